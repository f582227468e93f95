// Which iPXE binary a PXE firmware gets, by the client architecture it announces (DHCP option 93,
// RFC 4578 and the IANA "Processor Architecture Types" registry). Paths are relative to
// assets/ipxe/. Candidates are in order of preference: the first that exists is served.

export type IpxeChoice =
  | { kind: 'tftp'; candidates: string[]; firmware: 'bios' | 'uefi'; arch: 'amd64' | 'arm64' }
  | { kind: 'http'; candidates: string[]; firmware: 'uefi'; arch: 'amd64' | 'arm64' }
  | { kind: 'unsupported'; reason: string };

export function ipxeBinaryFor(clientArch: number): IpxeChoice {
  switch (clientArch) {
    case 0: // x86 BIOS: UNDI keeps the ROM's own driver, which works on every NIC the BIOS can PXE from
      return { kind: 'tftp', candidates: ['undionly.kpxe'], firmware: 'bios', arch: 'amd64' };
    case 7: // EFI x86-64 (BC)
    case 9: // EFI x86-64 (some firmwares announce 9: EFI BC, per errata)
      // snponly uses the firmware's own network driver (SNP), like undionly; ipxe.efi carries iPXE's drivers
      return { kind: 'tftp', candidates: ['snponly.efi', 'ipxe.efi'], firmware: 'uefi', arch: 'amd64' };
    case 11: // EFI ARM 64-bit
      return { kind: 'tftp', candidates: ['arm64-efi/snponly.efi'], firmware: 'uefi', arch: 'arm64' };
    case 16: // EFI x86-64 HTTP Boot
      return { kind: 'http', candidates: ['snponly.efi', 'ipxe.efi'], firmware: 'uefi', arch: 'amd64' };
    case 19: // EFI ARM 64-bit HTTP Boot
      return { kind: 'http', candidates: ['arm64-efi/snponly.efi'], firmware: 'uefi', arch: 'arm64' };
    case 6:
      return { kind: 'unsupported', reason: 'EFI IA32 (32-bit UEFI): Talos has no 32-bit build' };
    default:
      return { kind: 'unsupported', reason: `client architecture ${clientArch} is not one Talos runs on` };
  }
}
