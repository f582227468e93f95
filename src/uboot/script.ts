// The U-Boot side of the boot conversation, rendered from the same BootPlan the iPXE scripts
// come from. Pure: plain values in, text out.
//
// boot.scr.uimg (the same for every board) loops: fetch genesis/<mac>.scr.uimg over TFTP and
// `source` it; the machine script says what this machine does now. A waiting machine's script
// only prints why, and the loop asks again; an install runs `pxe get` / `pxe boot`, which fetch
// pxelinux.cfg/01-<mac> (kernel, initramfs and the kernel arguments with the config URL); an
// installed machine's script ends the loop, so distro boot moves on to its next target.
//
// U-Boot's shell expands ${...} and splits at whitespace and ';': values written into a script
// go through the same token() check as iPXE's, and echo text through ipxe/echo.ts.

import type { Arch } from '../domain/node.ts';
import { talosKernelArgs } from '../ipxe/kernel-args.ts';
import type { BootPlan } from '../ipxe/plan.ts';
import { holdEcho, whoText } from '../ipxe/echo.ts';
import { kernelArg, token } from '../ipxe/script.ts';

/** RFC 7440 window U-Boot asks for when the script sets it: 8 doubled TFTP throughput under QEMU. */
export const UBOOT_TFTP_WINDOW = 8;
/** U-Boot's own TFTP timer (ms; its minimum is 1000) and how many timeouts a file may take. */
export const UBOOT_TFTP_TIMEOUT_MS = 1000;
export const UBOOT_TFTP_TIMEOUTS = 100;

export function renderUbootBootScript(retrySeconds: number): string {
  return [
    '# Genesis boot script for U-Boot: ask Genesis what this machine does, until it says stop.',
    `setenv tftpwindowsize ${UBOOT_TFTP_WINDOW}`,
    // U-Boot waits 5 s whenever a NACK or an ACK of its is lost, and gives a file up after 10
    // such waits in all: on a lossy link a 30 MB kernel would not get through. A 1 s timer and a
    // larger budget keep each loss cheap; a dead server still fails the transfer, and the loop
    // below asks again.
    `setenv tftptimeout ${UBOOT_TFTP_TIMEOUT_MS}`,
    `setenv tftptimeoutcountmax ${UBOOT_TFTP_TIMEOUTS}`,
    'setenv genesis_loop 1',
    'while itest ${genesis_loop} -eq 1; do',
    '  if tftpboot ${scriptaddr} genesis/${ethaddr}.scr.uimg; then source ${scriptaddr}; fi',
    `  if itest \${genesis_loop} -eq 1; then sleep ${Math.max(1, Math.trunc(retrySeconds))}; fi`,
    'done',
    '',
  ].join('\n');
}

export type UbootMachineInput = { plan: BootPlan; mac: string; hostname?: string | null };

export function renderUbootMachineScript(input: UbootMachineInput): string {
  const { plan } = input;
  const mac = token(input.mac);
  const who = whoText(mac, input.hostname);
  switch (plan.kind) {
    case 'wait':
    case 'unsupported':
      return [holdEcho(plan, mac, who), ''].join('\n');
    case 'local':
      return [`echo "Genesis: ${who} is installed, leaving to the next boot target"`, 'setenv genesis_loop 0', ''].join('\n');
    case 'install':
    case 'install-linux':
      return [
        plan.kind === 'install'
          ? `echo "Genesis: booting Talos ${token(plan.talosVersion)} ${token(plan.arch)} for ${who} as ${plan.role}"`
          : `echo "Genesis: booting ${token(plan.profile)} ${token(plan.arch)} for ${who} as ${plan.role}"`,
        // A compressed arm64 Image needs somewhere to be unpacked from; boards that do not set
        // it get room above the initramfs.
        'if test -z "${kernel_comp_addr_r}"; then setexpr kernel_comp_addr_r ${ramdisk_addr_r} + 0x8000000; setenv kernel_comp_size 0x4000000; fi',
        'if pxe get; then pxe boot; fi',
        'echo "Genesis: could not boot, asking again"',
        '',
      ].join('\n');
  }
}

export type PxelinuxInput = { talosVersion: string; arch: Arch; configUrl: string; extraKernelArgs?: string[] };

export type PxelinuxLinuxInput = { profile: string; arch: Arch; kernel: string; initrd: string; args: string[] };

/**
 * pxelinux.cfg/01-<mac> for a Linux profile's install. U-Boot copies the append line into
 * bootargs itself, never through its shell, so `ds=nocloud;s=…` reaches the kernel whole.
 */
export function renderPxelinuxLinuxConfig(input: PxelinuxLinuxInput): string {
  const dir = `linux/${token(input.profile)}/${input.arch}`;
  const args = input.args.map(kernelArg);
  return ['default linux', 'label linux', `  kernel ${dir}/${token(input.kernel)}`, `  initrd ${dir}/${token(input.initrd)}`, `  append ${args.join(' ')}`, ''].join('\n');
}

/** pxelinux.cfg/01-<mac> for an install: TFTP paths below Genesis's TFTP root. */
export function renderPxelinuxConfig(input: PxelinuxInput): string {
  const dir = `talos/${token(input.talosVersion)}/${input.arch}`;
  const args = [...talosKernelArgs(input.talosVersion, input.arch), ...(input.extraKernelArgs ?? []), `talos.config=${token(input.configUrl)}`];
  return [
    'default talos',
    'label talos',
    `  kernel ${dir}/vmlinuz`,
    `  initrd ${dir}/initramfs.xz`,
    `  append ${args.map(token).join(' ')}`,
    '',
  ].join('\n');
}
