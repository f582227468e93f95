// What a machine should do next, decided from its inventory record alone. Pure, so every state
// and architecture is tested without HTTP or SQLite.

import type { Arch, Firmware, LocalBootMode, Node } from '../domain/node.ts';
import { SUPPORTED_RANGE, unsupportedVersionReason } from '../talos/contract.ts';

export type BootPlan =
  | { kind: 'wait'; reason: 'unassigned' }
  /** Assigned, but the kernel and initramfs of its Talos version are not downloaded yet. */
  | { kind: 'wait'; reason: 'assets-missing'; talosVersion: string; arch: Arch }
  /** Assigned, but its machine config cannot be rendered right now (`detail` says why). */
  | { kind: 'wait'; reason: 'config'; talosVersion: string; detail: string }
  /** Assigned, but no install window is open: the operator opens one (reinstall). */
  | { kind: 'wait'; reason: 'window-closed' }
  /** Two machines claimed the MAC inside its window: held until the operator confirms one. */
  | { kind: 'wait'; reason: 'conflict'; detail: string }
  /** Its boot profile (not Talos) is unknown, does not load, or its templates do not render (`detail` says why). */
  | { kind: 'wait'; reason: 'profile'; profile: string; detail: string }
  /** Its boot profile's kernel or initrd is not in assets/<profile>/<arch>/. */
  | { kind: 'wait'; reason: 'profile-assets-missing'; profile: string; arch: Arch; files: string[] }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'install'; talosVersion: string; arch: Arch; role: 'controlplane' | 'worker' }
  /** A Linux kernel and initrd with the profile's cloud-init datasource (provision/cloud-init.ts). */
  | { kind: 'install-linux'; profile: string; arch: Arch; role: 'controlplane' | 'worker' }
  | { kind: 'local'; mode: LocalBootMode };

/** Reported by iPXE: `${buildarch}` and `${platform}`. */
export function archFromIpxe(buildarch: string | undefined): Arch | undefined {
  // undionly.kpxe is a 32-bit build even on 64-bit machines; Talos has no 32-bit image, so a
  // BIOS machine that PXE-boots iPXE's i386 build is taken to be amd64.
  switch (buildarch) {
    case 'x86_64':
    case 'i386':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    default:
      return undefined;
  }
}

export function firmwareFromIpxe(platform: string | undefined): Firmware | undefined {
  if (platform === 'pcbios') return 'bios';
  if (platform === 'efi') return 'uefi';
  return undefined;
}

/** Whether a machine whose profile is not Talos can boot it now (provision/cloud-init.ts decides). */
export type LinuxProfileCheck =
  | { profile: string; kind: 'ready' }
  | { profile: string; kind: 'problem'; detail: string }
  | { profile: string; kind: 'assets-missing'; files: string[] };

/** Why the install window keeps a machine from its installer (install-window.ts decides). */
export type WindowHold = { reason: 'window-closed' } | { reason: 'conflict'; detail: string };

/**
 * `assetsPresent`: are the kernel and initramfs of this version and arch in place?
 * `configProblem`: why this node's machine config cannot be rendered now, or undefined when it can.
 * A machine is sent the installer only when both hold: an installer whose config cannot be served
 * would sit retrying until someone power-cycles it.
 */
export function planBoot(
  node: Node,
  defaultTalosVersion: string,
  assetsPresent: (version: string, arch: Arch) => boolean = () => true,
  configProblem: (node: Node) => string | undefined = () => undefined,
  window?: WindowHold,
  linuxProfile: (node: Node) => LinuxProfileCheck | undefined = () => undefined,
): BootPlan {
  if (node.role === 'unassigned') return { kind: 'wait', reason: 'unassigned' };
  if (node.state === 'installed') return { kind: 'local', mode: node.localBoot };
  if (window?.reason === 'conflict') return { kind: 'wait', reason: 'conflict', detail: window.detail };
  if (window?.reason === 'window-closed') return { kind: 'wait', reason: 'window-closed' };
  if (!node.arch) return { kind: 'unsupported', reason: 'its architecture is unknown (iPXE did not report ${buildarch})' };
  const linux = linuxProfile(node);
  if (linux) {
    if (linux.kind === 'problem') return { kind: 'wait', reason: 'profile', profile: linux.profile, detail: linux.detail };
    if (linux.kind === 'assets-missing') return { kind: 'wait', reason: 'profile-assets-missing', profile: linux.profile, arch: node.arch, files: linux.files };
    return { kind: 'install-linux', profile: linux.profile, arch: node.arch, role: node.role };
  }
  const talosVersion = node.talosVersion ?? defaultTalosVersion;
  if (unsupportedVersionReason(talosVersion)) return { kind: 'unsupported', reason: `Talos ${talosVersion}: Genesis writes configs for ${SUPPORTED_RANGE}` };
  // Never point a machine at a file that is not there: it would fail in iPXE with a 404.
  if (!assetsPresent(talosVersion, node.arch)) return { kind: 'wait', reason: 'assets-missing', talosVersion, arch: node.arch };
  const problem = configProblem(node);
  if (problem !== undefined) return { kind: 'wait', reason: 'config', talosVersion, detail: problem };
  return { kind: 'install', talosVersion, arch: node.arch, role: node.role };
}

/** The hold a conflict puts on the node (its `waiting`); the operator's confirm lifts it. */
export function conflictHoldText(detail: string): string {
  return `held: ${detail}; confirm the real machine (genesis nodes confirm <mac> <address>)`;
}

/** The hold a closed install window puts on the node; the operator opening a window lifts it. */
export const WINDOW_CLOSED_HOLD = 'waiting: its install window is closed (genesis nodes reinstall opens a new one)';

/** The one line that says why a plan holds an assigned machine back, or null when it does not. */
export function holdReason(plan: BootPlan): string | null {
  if (plan.kind === 'unsupported') return `cannot boot: ${plan.reason}`;
  if (plan.kind !== 'wait') return null;
  switch (plan.reason) {
    case 'unassigned':
      return null;
    case 'assets-missing':
      return `waiting for the Talos ${plan.talosVersion} ${plan.arch} kernel and initramfs (genesis assets fetch --talos ${plan.talosVersion} --arch ${plan.arch})`;
    case 'config':
      return `waiting: its machine config cannot be rendered: ${plan.detail}`;
    case 'profile':
      return `waiting: its boot profile ${plan.profile} cannot be used: ${plan.detail}`;
    case 'profile-assets-missing':
      return `waiting for the kernel and initrd of profile ${plan.profile}: ${plan.files.map((f) => `assets/${plan.profile}/${plan.arch}/${f}`).join(', ')} missing`;
    case 'window-closed':
      return WINDOW_CLOSED_HOLD;
    case 'conflict':
      return conflictHoldText(plan.detail);
  }
}
