// arm64 UEFI without iPXE: GRUB's TFTP names, the configs Genesis answers, and the proxyDHCP's
// fallback to Debian's network GRUB. The real firmware and GRUB run in test/e2e/boot-uboot.test.ts.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decode, Option } from '../../src/dhcp/packet.ts';
import { proxyAnswer, type ProxyContext } from '../../src/dhcp/proxy.ts';
import { classifyGrubFile, renderGrubBootstrap, renderGrubMachineConfig } from '../../src/grub/config.ts';
import type { BootPlan } from '../../src/ipxe/plan.ts';

const mac = '52:54:00:a6:00:01';
const url = `http://192.0.2.1:8080/talos/config/${mac}/${'a'.repeat(64)}`;

describe('GRUB file names', () => {
  it('knows its image, its loop and the per-MAC configs; other names below grub/ are its probes', () => {
    expect(classifyGrubFile('grub/grubnetaa64.efi')).toEqual({ kind: 'image' });
    expect(classifyGrubFile('grub/grub.cfg')).toEqual({ kind: 'bootstrap' });
    expect(classifyGrubFile('grub/genesis/52:54:00:A6:00:01.cfg')).toEqual({ kind: 'machine', mac });
    expect(classifyGrubFile('grub/arm64-efi/grub.cfg')).toEqual({ kind: 'other' });
    expect(classifyGrubFile('grub/genesis/zz:54:00:a6:00:01.cfg')).toEqual({ kind: 'other' });
    expect(classifyGrubFile('boot.scr.uimg')).toBeUndefined();
    expect(classifyGrubFile('snponly.efi')).toBeUndefined();
  });
});

describe('GRUB configs', () => {
  it('the loop sources the machine file by GRUB\'s own MAC variable and waits between turns', () => {
    const s = renderGrubBootstrap(5);
    expect(s).toContain('source $prefix/genesis/${net_default_mac}.cfg');
    expect(s).toContain('sleep 5');
    expect(s).toMatch(/while true; do[\s\S]*done/);
  });

  it('waiting says why; installed exits to the firmware; install boots Talos with its config URL', () => {
    expect(renderGrubMachineConfig({ plan: { kind: 'wait', reason: 'unassigned' }, mac })).toContain(`genesis nodes assign ${mac} worker`);
    const local = renderGrubMachineConfig({ plan: { kind: 'local', mode: 'exit' }, mac });
    expect(local.trim().split('\n').at(-1)).toBe('exit');
    const install = renderGrubMachineConfig({ plan: { kind: 'install', talosVersion: 'v1.14.0', arch: 'arm64', role: 'worker' } as BootPlan, mac, configUrl: url, extraKernelArgs: ['panic=1'] });
    const lines = install.split('\n');
    expect(lines.find((l) => l.startsWith('linux '))).toBe(`linux /talos/v1.14.0/arm64/vmlinuz talos.platform=metal console=ttyAMA0 console=tty0 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never panic=1 talos.config=${url}`);
    expect(lines).toContain('initrd /talos/v1.14.0/arm64/initramfs.xz');
    expect(lines).toContain('boot');
    expect(() => renderGrubMachineConfig({ plan: { kind: 'install', talosVersion: 'v1.14.0', arch: 'arm64', role: 'worker' } as BootPlan, mac })).toThrow(/config URL/);
  });

  it('nothing from a record reaches GRUB\'s parser: quotes, $, braces and ; become ?', () => {
    const s = renderGrubMachineConfig({ plan: { kind: 'local', mode: 'exit' } as BootPlan, mac, hostname: 'x"; reboot; echo "${y}' });
    expect(s.split('\n')[0]).toBe('echo "Genesis: x?? reboot? echo ???y? (52:54:00:a6:00:01) is installed, leaving to the next boot option"');
    expect(() => renderGrubMachineConfig({ plan: { kind: 'install', talosVersion: 'v1.14.0', arch: 'arm64', role: 'worker' } as BootPlan, mac, configUrl: 'http://x/$(reboot)' })).toThrow();
  });
});

describe('the proxyDHCP for arm64 UEFI PXE', () => {
  // OVMF's captured PXE DISCOVER, its client architecture set to 11 (EFI arm64), as AAVMF sends.
  const discover = () => {
    const p = decode(Buffer.from(readFileSync(path.resolve(import.meta.dirname, '../fixtures/dhcp/ovmf-pxe-discover.hex'), 'utf8').trim(), 'hex'));
    p.options.set(Option.CLIENT_ARCH, Buffer.from([0, 11]));
    return p;
  };
  const ctx: ProxyContext = { serverIp: '192.0.2.1', baseUrl: 'http://192.0.2.1:8080', haveBinary: () => false };

  it('prefers an arm64 iPXE, falls back to GRUB, and says what is missing when neither is there', () => {
    expect(proxyAnswer(discover(), 'dhcp', { ...ctx, haveBinary: (n) => n === 'arm64-efi/snponly.efi', haveGrubArm64: () => true })).toMatchObject({ kind: 'reply', bootfile: 'arm64-efi/snponly.efi' });
    expect(proxyAnswer(discover(), 'dhcp', { ...ctx, haveGrubArm64: () => true })).toMatchObject({ kind: 'reply', client: 'pxe', bootfile: 'grub/grubnetaa64.efi' });
    expect(proxyAnswer(discover(), 'dhcp', { ...ctx, haveGrubArm64: () => false })).toMatchObject({ kind: 'ignore', reason: 'none of arm64-efi/snponly.efi is in assets/ipxe (nor grub/grubnetaa64.efi in assets)' });
  });

  it('never offers GRUB to HTTP Boot (it would look for its configs on port 80)', () => {
    const p = discover();
    p.options.set(Option.CLIENT_ARCH, Buffer.from([0, 19]));
    p.options.set(Option.VENDOR_CLASS, Buffer.from('HTTPClient:Arch:00019:UNDI:003000'));
    expect(proxyAnswer(p, 'dhcp', { ...ctx, haveGrubArm64: () => true })).toMatchObject({ kind: 'ignore' });
  });
});
