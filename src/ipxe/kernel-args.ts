// The kernel command line Talos needs on metal, per Talos minor and architecture, built the way
// Talos's imager builds it for its own boot assets (pkg/imager buildCmdline at each tag):
//   talos.platform=metal, the platform's console= arguments, then kernel.DefaultArgs(quirks).
// Leaving one out breaks boot or weakens it (Talos refuses to boot without slab_nomerge and pti=on).
// The quirk versions are Talos's own (pkg/machinery/imager/quirks), copied into
// src/talos/schemas/v1.<minor>/accepted-fields.json `extras` for reference.

import type { Arch } from '../domain/node.ts';
import { parseTalosVersion } from '../talos/contract.ts';

/** Major and minor of a Talos tag such as v1.12.3 or v1.13.0-beta.1. */
export function talosMinor(version: string): { major: number; minor: number } {
  const v = parseTalosVersion(version);
  if (!v) throw new Error(`not a Talos version: ${version}`);
  return { major: v.major, minor: v.minor };
}

function atLeast(version: string, major: number, minor: number): boolean {
  const v = talosMinor(version);
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** Talos's `Metal.KernelArgs(arch)`: ttyS0 was dropped for amd64 in 1.8, so only the screen is left. */
function consoleArgs(version: string, arch: Arch): string[] {
  if (arch === 'arm64') return ['console=ttyAMA0', 'console=tty0'];
  return atLeast(version, 1, 8) ? ['console=tty0'] : ['console=ttyS0', 'console=tty0'];
}

/** Talos's `kernel.DefaultArgs(quirks)`. */
function defaultArgs(version: string): string[] {
  const args: string[] = [];
  // DropInitOnAllocInArgs (1.14): the kernel's own config enables it.
  if (!atLeast(version, 1, 14)) args.push('init_on_alloc=1');
  args.push('slab_nomerge', 'pti=on', 'consoleblank=0');
  // NvmeCoreIoTimeoutAWSOnly (1.14): only Talos's AWS images carry it from then on.
  if (!atLeast(version, 1, 14)) args.push('nvme_core.io_timeout=4294967295');
  args.push('printk.devkmsg=on');
  // SupportsIMA: up to 1.10.
  if (!atLeast(version, 1, 11)) args.push('ima_template=ima-ng', 'ima_appraise=fix', 'ima_hash=sha512');
  if (atLeast(version, 1, 10)) args.push('selinux=1');
  if (atLeast(version, 1, 12)) args.push('module.sig_enforce=1');
  if (atLeast(version, 1, 13)) args.push('proc_mem.force_override=never');
  return args;
}

export function talosKernelArgs(version: string, arch: Arch): string[] {
  return ['talos.platform=metal', ...consoleArgs(version, arch), ...defaultArgs(version)];
}
