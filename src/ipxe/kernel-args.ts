// The kernel command line Talos needs, per Talos version and architecture. Talos's own boot
// assets (Image Factory, the ISO) use the same set; leaving one out breaks boot or weakens it.

import type { Arch } from '../inventory/model.ts';

/** Major and minor of a Talos tag such as v1.12.3 or v1.13.0-beta.1. */
export function talosMinor(version: string): { major: number; minor: number } {
  const m = /^v(\d+)\.(\d+)\./.exec(version);
  if (!m) throw new Error(`not a Talos version: ${version}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

function atLeast(version: string, major: number, minor: number): boolean {
  const v = talosMinor(version);
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function talosKernelArgs(version: string, arch: Arch): string[] {
  const args = [
    'talos.platform=metal',
    'slab_nomerge',
    'pti=on',
    'init_on_alloc=1',
    'consoleblank=0',
    'nvme_core.io_timeout=4294967295',
    'printk.devkmsg=on',
  ];
  if (atLeast(version, 1, 10)) args.push('selinux=1');
  if (atLeast(version, 1, 12)) args.push('module.sig_enforce=1');
  // The last console= is /dev/console: keep the screen last so a monitor, when there is one, shows it.
  args.push(...(arch === 'arm64' ? ['console=ttyAMA0', 'console=tty0'] : ['console=tty0']));
  return args;
}
