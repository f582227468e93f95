// Which iPXE binary a PXE firmware gets, by the client architecture it announces (DHCP option 93,
// RFC 4578 and the IANA "Processor Architecture Types" registry). Paths are relative to
// assets/ipxe/. Candidates are in order of preference: the first that exists is served.

/** The iPXE binaries Genesis hands out, by firmware; the one list of their names. */
export const IPXE_BIOS = 'undionly.kpxe';
export const IPXE_EFI_AMD64 = ['snponly.efi', 'ipxe.efi'] as const;
export const IPXE_EFI_ARM64 = ['arm64-efi/snponly.efi', 'arm64-efi/ipxe.efi'] as const;
/**
 * Not iPXE: Debian's network GRUB for arm64 UEFI (grub-efi-arm64-signed), the proxyDHCP's fallback
 * for client arch 11 when no arm64 iPXE is there. Its TFTP name, below <assets_dir>; see grub/config.ts.
 */
export const GRUB_NETBOOT_ARM64 = 'grub/grubnetaa64.efi';
/** Every name an iPXE binary is served under (also the legacy ipxe.pxe some routers name). */
export const IPXE_BINARY_NAMES: ReadonlySet<string> = new Set([IPXE_BIOS, 'ipxe.pxe', ...IPXE_EFI_AMD64, ...IPXE_EFI_ARM64]);

/** Where assets/ipxe keeps the iPXE EFI binary for an architecture (what the proxyDHCP hands out first). */
export function ipxeEfiPath(arch: 'amd64' | 'arm64'): string {
  return arch === 'arm64' ? IPXE_EFI_ARM64[0] : IPXE_EFI_AMD64[0];
}

export type IpxeChoice =
  | { kind: 'tftp'; candidates: string[]; firmware: 'bios' | 'uefi'; arch: 'amd64' | 'arm64' }
  | { kind: 'http'; candidates: string[]; firmware: 'uefi'; arch: 'amd64' | 'arm64' }
  | { kind: 'unsupported'; reason: string };

export function ipxeBinaryFor(clientArch: number): IpxeChoice {
  switch (clientArch) {
    case 0: // x86 BIOS: UNDI keeps the ROM's own driver, which works on every NIC the BIOS can PXE from
      return { kind: 'tftp', candidates: [IPXE_BIOS], firmware: 'bios', arch: 'amd64' };
    case 7: // EFI x86-64 (BC)
    case 9: // EFI x86-64 (some firmwares announce 9: EFI BC, per errata)
      // snponly uses the firmware's own network driver (SNP), like undionly; ipxe.efi carries iPXE's drivers
      return { kind: 'tftp', candidates: [...IPXE_EFI_AMD64], firmware: 'uefi', arch: 'amd64' };
    case 11: // EFI ARM 64-bit
      return { kind: 'tftp', candidates: [IPXE_EFI_ARM64[0]], firmware: 'uefi', arch: 'arm64' };
    case 16: // EFI x86-64 HTTP Boot
      return { kind: 'http', candidates: [...IPXE_EFI_AMD64], firmware: 'uefi', arch: 'amd64' };
    case 19: // EFI ARM 64-bit HTTP Boot
      return { kind: 'http', candidates: [IPXE_EFI_ARM64[0]], firmware: 'uefi', arch: 'arm64' };
    case 6:
      return { kind: 'unsupported', reason: 'EFI IA32 (32-bit UEFI): Talos has no 32-bit build' };
    default:
      return { kind: 'unsupported', reason: `client architecture ${clientArch} is not one Talos runs on` };
  }
}
