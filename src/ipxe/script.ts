// iPXE script renderers. Pure: they take plain values and return text.
//
// iPXE splits a line into words at whitespace, treats the words `||`, `&&` and `;` as operators,
// expands `${...}` everywhere, and honours quotes and backslashes. A value written into a script
// must therefore never carry whitespace, `$`, quotes, backslashes or newlines: `token()` refuses
// such a value outright, `text()` (for echo lines) replaces anything outside a plain set.

import type { Arch } from '../domain/node.ts';
import { talosKernelArgs } from './kernel-args.ts';
import { isKernelWord, isScriptWord } from './word.ts';
import { holdReason, type BootPlan } from './plan.ts';

export class ScriptValueError extends Error {}

/** A value used as (part of) one word of a command: URL, kernel argument. */
export function token(value: string): string {
  if (!isScriptWord(value)) {
    throw new ScriptValueError(`refusing to write ${JSON.stringify(value)} into an iPXE script`);
  }
  return value;
}

/** Free text for `echo`: anything unusual becomes `?`, and no word may look like an option or operator. */
export function text(value: string): string {
  return value
    .replace(/[^A-Za-z0-9 ._:/=+,@()-]/g, '?')
    .split(' ')
    .filter((w) => w !== '')
    .map((w) => (w.startsWith('-') ? '?' + w.slice(1) : w))
    .join(' ');
}

/** iPXE settings the entry script reports, URI-encoded by iPXE itself (`:uristring`). */
const IDENTITY_QUERY = [
  'mac=${mac:hexhyp}',
  'buildarch=${buildarch:uristring}',
  'platform=${platform:uristring}',
  'uuid=${uuid:uristring}',
  'serial=${serial:uristring}',
  'manufacturer=${manufacturer:uristring}',
  'product=${product:uristring}',
].join('&');

/**
 * `boot.ipxe`: the one script every machine gets first. It tells Genesis who it is and chains to
 * the script for this machine. If Genesis cannot be reached it leaves to the firmware's next boot
 * device, so an installed node still boots from its disk when Genesis is down.
 */
export function renderEntryScript(baseUrl: string): string {
  const url = `${token(baseUrl)}/ipxe/node?${IDENTITY_QUERY}`;
  return [
    '#!ipxe',
    '# Genesis entry script: report this machine to Genesis and run the script it answers with.',
    'echo Genesis: ${mac} (${buildarch} ${platform}) asking for its boot script',
    `chain --replace --autofree ${url} || goto failed`,
    ':failed',
    'echo Genesis: could not fetch the boot script (error ${errno}), trying the next boot device',
    'sleep 5',
    'exit 1',
    '',
  ].join('\n');
}

export type NodeScriptInput = {
  plan: BootPlan;
  baseUrl: string;
  mac: string;
  hostname?: string | null;
  /** Seconds a waiting machine sleeps before asking again. */
  retrySeconds?: number;
  /** The talos.config= URL, MAC (and later a token) already written in by Genesis. */
  configUrl?: string;
  /** Operator-chosen kernel arguments, after the ones Talos requires. */
  extraKernelArgs?: string[];
  /** For an install-linux plan: the profile's kernel and initrd file names and its kernel arguments. */
  linux?: { kernel: string; initrd: string; args: string[] };
};

/** A kernel argument of a Linux profile (word.ts isKernelWord), for iPXE, pxelinux and GRUB alike. */
export function kernelArg(value: string): string {
  if (!isKernelWord(value)) {
    throw new ScriptValueError(`refusing to write ${JSON.stringify(value)} into an iPXE script`);
  }
  return value;
}

function retry(baseUrl: string, seconds: number): string[] {
  return [`sleep ${seconds}`, `chain --replace --autofree ${token(baseUrl)}/boot.ipxe`];
}

/** The per-machine script. For `local` with mode `http404` there is no script: the caller answers 404. */
export function renderNodeScript(input: NodeScriptInput): string {
  const { plan, baseUrl } = input;
  const mac = token(input.mac);
  const who = input.hostname ? `${text(input.hostname)} (${mac})` : mac;
  const wait = input.retrySeconds ?? 15;
  switch (plan.kind) {
    case 'wait':
      if (plan.reason === 'assets-missing') {
        return [
          '#!ipxe',
          `echo Genesis: ${who} is to install Talos ${token(plan.talosVersion)} ${token(plan.arch)},`,
          'echo but its kernel and initramfs are not downloaded yet.',
          `echo On Genesis: genesis assets fetch --talos ${token(plan.talosVersion)} --arch ${token(plan.arch)}`,
          `echo Asking again in ${wait} seconds.`,
          ...retry(baseUrl, wait),
          '',
        ].join('\n');
      }
      if (plan.reason === 'window-closed' || plan.reason === 'conflict') {
        return [
          '#!ipxe',
          plan.reason === 'conflict'
            ? `echo Genesis: ${who} is held: another machine claims the same MAC. The operator confirms which is real.`
            : `echo Genesis: ${who} has no open install window. On Genesis: genesis nodes reinstall ${mac}`,
          `echo Asking again in ${wait} seconds.`,
          ...retry(baseUrl, wait),
          '',
        ].join('\n');
      }
      if (plan.reason === 'profile' || plan.reason === 'profile-assets-missing') {
        return [
          '#!ipxe',
          `echo Genesis: ${who} ${text((holdReason(plan) ?? '').slice(0, 200))}`,
          `echo Asking again in ${wait} seconds.`,
          ...retry(baseUrl, wait),
          '',
        ].join('\n');
      }
      if (plan.reason === 'config') {
        return [
          '#!ipxe',
          // One line with the reason; the whole of it is in the node's events and genesis nodes show.
          `echo Genesis: ${who} waits: its machine config cannot be rendered: ${text(plan.detail.slice(0, 200))}`,
          `echo Asking again in ${wait} seconds.`,
          ...retry(baseUrl, wait),
          '',
        ].join('\n');
      }
      return [
        '#!ipxe',
        // Short lines: firmware consoles are 80 columns and cut the rest.
        `echo Genesis: machine ${who} is recorded but has no role yet.`,
        `echo To assign one: genesis nodes assign ${mac} worker`,
        `echo Asking again in ${wait} seconds.`,
        ...retry(baseUrl, wait),
        '',
      ].join('\n');
    case 'unsupported':
      return ['#!ipxe', `echo Genesis: cannot boot ${who}: ${text(plan.reason)}`, ...retry(baseUrl, 60), ''].join('\n');
    case 'local':
      if (plan.mode === 'sanboot') {
        return ['#!ipxe', `echo Genesis: ${who} is installed, booting the first local disk`, 'sanboot --no-describe --drive 0x80 || exit 1', ''].join('\n');
      }
      return ['#!ipxe', `echo Genesis: ${who} is installed, leaving to the local disk`, 'exit 1', ''].join('\n');
    case 'install':
      return renderInstall(input, plan.talosVersion, plan.arch, plan.role, who, wait);
    case 'install-linux':
      return renderLinuxInstall(input, plan.profile, plan.arch, plan.role, who, wait);
  }
}

export function talosAssetUrls(baseUrl: string, version: string, arch: Arch): { kernel: string; initrd: string } {
  const dir = `${token(baseUrl)}/assets/talos/${token(version)}/${arch}`;
  return { kernel: `${dir}/vmlinuz`, initrd: `${dir}/initramfs.xz` };
}

function renderLinuxInstall(input: NodeScriptInput, profile: string, arch: Arch, role: string, who: string, wait: number): string {
  if (!input.linux) throw new ScriptValueError('a Linux install script needs its kernel, initrd and arguments');
  const dir = `${token(input.baseUrl)}/assets/${token(profile)}/${arch}`;
  const initrd = token(input.linux.initrd);
  const args = [`initrd=${initrd}`, ...input.linux.args.map(kernelArg)];
  return [
    '#!ipxe',
    `echo Genesis: booting ${token(profile)} ${arch} for ${who} as ${role}`,
    'imgfree',
    `kernel ${dir}/${token(input.linux.kernel)} ${args.join(' ')} || goto failed`,
    `initrd --name ${initrd} ${dir}/${initrd} || goto failed`,
    'boot || goto failed',
    ':failed',
    `echo Genesis: could not boot (error \${errno}), trying again in ${wait} seconds`,
    ...retry(input.baseUrl, wait),
    '',
  ].join('\n');
}

function renderInstall(input: NodeScriptInput, version: string, arch: Arch, role: string, who: string, wait: number): string {
  if (!input.configUrl) throw new ScriptValueError('an install script needs the talos.config URL');
  const urls = talosAssetUrls(input.baseUrl, version, arch);
  // initrd=<name>: the EFI stub finds the initramfs iPXE registered under that name.
  const args = ['initrd=initramfs.xz', ...talosKernelArgs(version, arch), ...(input.extraKernelArgs ?? []), `talos.config=${token(input.configUrl)}`];
  return [
    '#!ipxe',
    `echo Genesis: booting Talos ${token(version)} ${arch} for ${who} as ${role}`,
    'imgfree',
    `kernel ${urls.kernel} ${args.map(token).join(' ')} || goto failed`,
    `initrd --name initramfs.xz ${urls.initrd} || goto failed`,
    'boot || goto failed',
    ':failed',
    `echo Genesis: could not boot Talos (error \${errno}), trying again in ${wait} seconds`,
    ...retry(input.baseUrl, wait),
    '',
  ].join('\n');
}

