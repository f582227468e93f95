// arm64 UEFI without iPXE: Debian's signed network GRUB (grubnetaa64.efi, package
// grub-efi-arm64-signed) as the first binary, and GRUB configs Genesis answers over TFTP.
// Pure: names in, meanings out; plain values in, text out.
//
// The image's prefix is built in: `/grub` on the TFTP server it was loaded from (the DHCP
// next-server; Debian's GRUB 2.06 reads the router's ACK, not a proxyDHCP offer). Its embedded
// config sources `$prefix/arm64-efi/grub.cfg` if there is one, else `$prefix/grub.cfg`. Genesis
// answers grub/grub.cfg with a loop, the same for every machine: source
// grub/genesis/<mac>.cfg (GRUB's own $net_default_mac), which says what this machine does now;
// a waiting machine's file only prints why, and the loop asks again; an install loads the Talos
// kernel and initramfs over TFTP and boots them; an installed machine's file runs `exit`, so the
// firmware moves on to its next boot option.
//
// GRUB's script language expands $ and splits at whitespace, ';', quotes and braces: values go
// through the same token() check as iPXE's, and echo text through a plain charset.

import { normalizeMac } from '../domain/mac.ts';
import type { Arch } from '../domain/node.ts';
import { GRUB_NETBOOT_ARM64 } from '../ipxe/binaries.ts';
import { talosKernelArgs } from '../ipxe/kernel-args.ts';
import type { BootPlan } from '../ipxe/plan.ts';
import { holdEcho, whoText } from '../ipxe/echo.ts';
import { kernelArg, token } from '../ipxe/script.ts';


export type GrubFile =
  | { kind: 'image' } // grub/grubnetaa64.efi, from <assets_dir>/grub
  | { kind: 'bootstrap' } // grub/grub.cfg: the same loop for every machine
  | { kind: 'machine'; mac: string } // grub/genesis/<mac>.cfg
  | { kind: 'other' }; // anything else GRUB probes below its prefix (arm64-efi/grub.cfg, modules, locale)

/** `name` is already normalised by the TFTP layer (no leading '/', no '..'). */
export function classifyGrubFile(name: string): GrubFile | undefined {
  if (!name.startsWith('grub/')) return undefined;
  if (name === GRUB_NETBOOT_ARM64) return { kind: 'image' };
  if (name === 'grub/grub.cfg') return { kind: 'bootstrap' };
  const m = /^grub\/genesis\/([0-9a-fA-F:]{17})\.cfg$/.exec(name);
  if (m) {
    const mac = normalizeMac(m[1]!);
    return mac ? { kind: 'machine', mac } : { kind: 'other' };
  }
  return { kind: 'other' };
}

export function renderGrubBootstrap(retrySeconds: number): string {
  return [
    '# Genesis for GRUB (arm64 UEFI without iPXE): ask Genesis what this machine does, until it says stop.',
    'set timeout=0',
    'while true; do',
    '  source $prefix/genesis/${net_default_mac}.cfg',
    `  sleep ${Math.max(1, Math.trunc(retrySeconds))}`,
    'done',
    '',
  ].join('\n');
}

export type GrubMachineInput = {
  plan: BootPlan;
  mac: string;
  hostname?: string | null;
  /** For an install: the node's tokenised config URL. */
  configUrl?: string;
  extraKernelArgs?: string[];
  /** For an install-linux plan: the profile's kernel and initrd file names and its arguments. */
  linux?: { kernel: string; initrd: string; args: string[] };
};

/** The TFTP directory of a Talos version's kernel and initramfs (served from <assets_dir>/talos). */
export function talosTftpDir(version: string, arch: Arch): string {
  return `/talos/${token(version)}/${arch}`;
}

export function renderGrubMachineConfig(input: GrubMachineInput): string {
  const { plan } = input;
  const mac = token(input.mac);
  const who = whoText(mac, input.hostname);
  switch (plan.kind) {
    case 'wait':
    case 'unsupported':
      return [holdEcho(plan, mac, who), ''].join('\n');
    case 'local':
      // GRUB's exit returns to the firmware, which tries its next boot option (the disk).
      return [`echo "Genesis: ${who} is installed, leaving to the next boot option"`, 'exit', ''].join('\n');
    case 'install-linux': {
      if (!input.linux) throw new Error('a Linux install config needs its kernel, initrd and arguments');
      const dir = `/linux/${token(plan.profile)}/${plan.arch}`;
      // GRUB splits at ';' and expands $ outside single quotes: each argument is single-quoted
      // (none may hold a quote), so ds=nocloud;s=… reaches the kernel whole.
      const args = input.linux.args.map((a) => `'${kernelArg(a)}'`);
      return [
        `echo "Genesis: booting ${token(plan.profile)} ${token(plan.arch)} for ${who} as ${plan.role}"`,
        `linux ${dir}/${token(input.linux.kernel)} ${args.join(' ')}`,
        `initrd ${dir}/${token(input.linux.initrd)}`,
        'boot',
        'echo "Genesis: could not boot, asking again"',
        '',
      ].join('\n');
    }
    case 'install': {
      if (!input.configUrl) throw new Error('an install config needs the config URL');
      const dir = talosTftpDir(plan.talosVersion, plan.arch);
      const args = [...talosKernelArgs(plan.talosVersion, plan.arch), ...(input.extraKernelArgs ?? []), `talos.config=${input.configUrl}`].map(token);
      return [
        `echo "Genesis: booting Talos ${token(plan.talosVersion)} ${token(plan.arch)} for ${who} as ${plan.role}"`,
        `linux ${dir}/vmlinuz ${args.join(' ')}`,
        `initrd ${dir}/initramfs.xz`,
        'boot',
        'echo "Genesis: could not boot Talos, asking again"',
        '',
      ].join('\n');
    }
  }
}
