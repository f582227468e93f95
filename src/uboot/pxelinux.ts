// The file names U-Boot's `pxe get` asks for, in its order: pxelinux.cfg/01-<mac with dashes>,
// pxelinux.cfg/<IP in hex> shortened one digit at a time, pxelinux.cfg/default-<arch>,
// pxelinux.cfg/default. Also the one Genesis's own boot script fetches per machine:
// genesis/<mac>.scr.uimg. Pure: names in, meanings out.

import { normalizeMac } from '../domain/mac.ts';

export type UbootFile =
  | { kind: 'boot-script' } // boot.scr.uimg: the same for every board
  | { kind: 'machine-script'; mac: string } // genesis/<mac>.scr.uimg
  | { kind: 'pxelinux-mac'; mac: string } // pxelinux.cfg/01-aa-bb-cc-dd-ee-ff
  | { kind: 'pxelinux-fallback'; name: string } // hex IP prefixes, default-<arch>, default
  | { kind: 'talos-asset'; version: string; arch: string; file: 'vmlinuz' | 'initramfs.xz' }
  /** linux/<profile>/<arch>/<file>: a Linux profile's kernel or initrd (assets/<profile>/<arch>/<file>). */
  | { kind: 'profile-asset'; profile: string; arch: string; file: string };

export const BOOT_SCRIPT_NAME = 'boot.scr.uimg';

/** `name` is already normalised by the TFTP layer (no leading '/', no '..'). */
export function classifyUbootFile(name: string): UbootFile | undefined {
  if (name === BOOT_SCRIPT_NAME) return { kind: 'boot-script' };
  let m = /^genesis\/([0-9a-fA-F:]{17})\.scr\.uimg$/.exec(name);
  if (m) {
    const mac = normalizeMac(m[1]!);
    return mac ? { kind: 'machine-script', mac } : undefined;
  }
  // U-Boot prefixes the directory of the DHCP boot file name, if any: match the last two segments.
  m = /(?:^|\/)pxelinux\.cfg\/(.+)$/.exec(name);
  if (m) {
    const leaf = m[1]!;
    const macMatch = /^01-([0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){5})$/.exec(leaf);
    if (macMatch) {
      const mac = normalizeMac(macMatch[1]!.replace(/-/g, ':'));
      return mac ? { kind: 'pxelinux-mac', mac } : undefined;
    }
    if (/^[0-9A-F]{1,8}$/.test(leaf) || /^default(-[a-z0-9_]+)?$/.test(leaf)) return { kind: 'pxelinux-fallback', name: leaf };
    return undefined;
  }
  m = /^talos\/(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\/(amd64|arm64)\/(vmlinuz|initramfs\.xz)$/.exec(name);
  if (m) return { kind: 'talos-asset', version: m[1]!, arch: m[2]!, file: m[3] as 'vmlinuz' | 'initramfs.xz' };
  m = /^linux\/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\/(amd64|arm64)\/([A-Za-z0-9_][A-Za-z0-9._+-]{0,127})$/.exec(name);
  if (m && m[1] !== 'talos') return { kind: 'profile-asset', profile: m[1]!, arch: m[2]!, file: m[3]! };
  return undefined;
}

/** The hex-IP names U-Boot tries for an address, longest first (pxelinux's convention). */
export function hexIpNames(ip: string): string[] {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return [];
  const hex = parts.map((p) => p.toString(16).toUpperCase().padStart(2, '0')).join('');
  return Array.from({ length: 8 }, (_, i) => hex.slice(0, 8 - i));
}

export function pxelinuxMacName(mac: string): string {
  return `pxelinux.cfg/01-${mac.toLowerCase().replace(/:/g, '-')}`;
}
