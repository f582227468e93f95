// U-Boot boards: the script-image encoder (against mkimage/dumpimage), the names `pxe get` asks
// for, the scripts per plan, and the proxyDHCP's answer to U-Boot's DHCP.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decode, encode, MessageType, Option } from '../../src/dhcp/packet.ts';
import { proxyAnswer } from '../../src/dhcp/proxy.ts';
import type { BootPlan } from '../../src/ipxe/plan.ts';
import { decodeScriptImage, encodeScriptImage } from '../../src/uboot/script-image.ts';
import { classifyUbootFile, hexIpNames, pxelinuxMacName } from '../../src/uboot/pxelinux.ts';
import { renderPxelinuxConfig, renderUbootBootScript, renderUbootMachineScript } from '../../src/uboot/script.ts';

const work = mkdtempSync(path.join(tmpdir(), 'genesis-uboot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const have = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
};
const mkimage = have('mkimage') && have('dumpimage');

describe('U-Boot script image', () => {
  const script = renderUbootBootScript(15);

  it.skipIf(!mkimage)('is byte for byte what mkimage -T script writes (apart from the time stamp), and mkimage -l and dumpimage read it', () => {
    const mine = encodeScriptImage(script, { name: 'genesis boot', time: 1_700_000_000 });
    writeFileSync(path.join(work, 'boot.cmd'), script);
    execFileSync('mkimage', ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-n', 'genesis boot', '-d', path.join(work, 'boot.cmd'), path.join(work, 'theirs.uimg')], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
    const theirs = readFileSync(path.join(work, 'theirs.uimg'));
    expect(mine.equals(theirs)).toBe(true);
    writeFileSync(path.join(work, 'mine.uimg'), mine);
    const listed = execFileSync('mkimage', ['-l', path.join(work, 'mine.uimg')], { encoding: 'utf8' });
    expect(listed).toMatch(/Image Name:\s+genesis boot/);
    expect(listed).toMatch(/Image Type:\s+AArch64 Linux Script \(uncompressed\)/);
    execFileSync('dumpimage', ['-T', 'script', '-p', '0', '-o', path.join(work, 'out.cmd'), path.join(work, 'mine.uimg')]);
    // dumpimage hands back the script payload: the one file's length, the 0 that ends the list, the text.
    const out = readFileSync(path.join(work, 'out.cmd'));
    expect(out.readUInt32BE(0)).toBe(Buffer.byteLength(script));
    expect(out.subarray(8).toString('utf8')).toBe(script);
  });

  it('decodes what it encodes, and refuses a damaged image', () => {
    const img = encodeScriptImage('echo hi\n', { name: 'x' });
    expect(decodeScriptImage(img)).toEqual({ ok: true, name: 'x', script: 'echo hi\n' });
    const bad = Buffer.from(img);
    bad[70] = bad[70]! ^ 1;
    expect(decodeScriptImage(bad)).toMatchObject({ ok: false, reason: 'bad data CRC' });
    const badHeader = Buffer.from(img);
    badHeader[40] = badHeader[40]! ^ 1;
    expect(decodeScriptImage(badHeader)).toMatchObject({ ok: false, reason: 'bad header CRC' });
    expect(decodeScriptImage(Buffer.alloc(10))).toMatchObject({ ok: false });
  });
});

describe('the names U-Boot asks for', () => {
  it('classifies each name pxe get, distro boot and the boot script use', () => {
    expect(classifyUbootFile('boot.scr.uimg')).toEqual({ kind: 'boot-script' });
    expect(classifyUbootFile('genesis/52:54:00:A6:00:01.scr.uimg')).toEqual({ kind: 'machine-script', mac: '52:54:00:a6:00:01' });
    expect(classifyUbootFile('pxelinux.cfg/01-52-54-00-a6-00-01')).toEqual({ kind: 'pxelinux-mac', mac: '52:54:00:a6:00:01' });
    // Prefixed by the directory of the DHCP boot file name.
    expect(classifyUbootFile('boards/pxelinux.cfg/01-52-54-00-a6-00-01')).toEqual({ kind: 'pxelinux-mac', mac: '52:54:00:a6:00:01' });
    for (const n of ['C000028C', 'C00002', 'C', 'default-arm', 'default']) expect(classifyUbootFile(`pxelinux.cfg/${n}`)).toEqual({ kind: 'pxelinux-fallback', name: n });
    expect(classifyUbootFile('talos/v1.14.0/arm64/vmlinuz')).toEqual({ kind: 'talos-asset', version: 'v1.14.0', arch: 'arm64', file: 'vmlinuz' });
    expect(classifyUbootFile('talos/v1.14.0/arm64/initramfs.xz')).toMatchObject({ file: 'initramfs.xz' });
    expect(classifyUbootFile('linux/k3s/arm64/vmlinuz')).toEqual({ kind: 'profile-asset', profile: 'k3s', arch: 'arm64', file: 'vmlinuz' });
    expect(classifyUbootFile('linux/ubuntu-24/amd64/initrd.img')).toEqual({ kind: 'profile-asset', profile: 'ubuntu-24', arch: 'amd64', file: 'initrd.img' });
    for (const n of ['linux/talos/arm64/vmlinuz', 'linux/k3s/riscv64/vmlinuz', 'linux/K3S/arm64/vmlinuz', 'linux/k3s/arm64/.hidden', 'linux/k3s/arm64/a/b', 'linux/k3s/vmlinuz']) {
      expect(classifyUbootFile(n), n).toBeUndefined();
    }
    for (const n of ['undionly.kpxe', 'snponly.efi', 'talos/v1.14.0/arm64/secrets.yaml', 'talos/latest/arm64/vmlinuz', 'pxelinux.cfg/01-zz-54-00-a6-00-01', 'genesis/52:54:00:a6:00.scr.uimg', 'pxelinux.cfg/../x']) {
      expect(classifyUbootFile(n), n).toBeUndefined();
    }
  });

  it('writes the hex-IP names in the order U-Boot asks for them', () => {
    expect(hexIpNames('192.0.2.140')).toEqual(['C000028C', 'C000028', 'C00002', 'C0000', 'C000', 'C00', 'C0', 'C']);
    expect(hexIpNames('not an address')).toEqual([]);
    expect(pxelinuxMacName('52:54:00:A6:00:01')).toBe('pxelinux.cfg/01-52-54-00-a6-00-01');
  });
});

describe('U-Boot scripts per plan', () => {
  const mac = '52:54:00:a6:00:01';
  it('the boot script loops on the machine script and sets the TFTP window', () => {
    const s = renderUbootBootScript(15);
    expect(s).toContain('setenv tftpwindowsize 8');
    // A lost ACK costs U-Boot 1 s instead of 5, and a long file may take 100 of them instead of 10.
    expect(s).toContain('setenv tftptimeout 1000');
    expect(s).toContain('setenv tftptimeoutcountmax 100');
    expect(s).toContain('tftpboot ${scriptaddr} genesis/${ethaddr}.scr.uimg');
    expect(s).toContain('sleep 15');
  });

  it('waiting says why and leaves the loop running; installed ends it; install runs pxe', () => {
    const wait = renderUbootMachineScript({ plan: { kind: 'wait', reason: 'unassigned' }, mac });
    expect(wait).toContain('genesis nodes assign 52:54:00:a6:00:01 worker');
    expect(wait).not.toContain('genesis_loop 0');
    const assets = renderUbootMachineScript({ plan: { kind: 'wait', reason: 'assets-missing', talosVersion: 'v1.14.0', arch: 'arm64' }, mac });
    expect(assets).toContain('genesis assets fetch --talos v1.14.0 --arch arm64');
    expect(renderUbootMachineScript({ plan: { kind: 'local', mode: 'exit' }, mac })).toContain('setenv genesis_loop 0');
    const install = renderUbootMachineScript({ plan: { kind: 'install', talosVersion: 'v1.14.0', arch: 'arm64', role: 'worker' }, mac, hostname: 'w1' });
    expect(install).toContain('if pxe get; then pxe boot; fi');
    expect(install).not.toContain('genesis_loop 0');
  });

  it('a hostile hostname cannot break out of the echo', () => {
    const s = renderUbootMachineScript({ plan: { kind: 'local', mode: 'exit' } as BootPlan, mac, hostname: 'x"; reset; echo "' });
    expect(s.split('\n')[0]).toBe('echo "Genesis: x?? reset? echo ? (52:54:00:a6:00:01) is installed, leaving to the next boot target"');
    expect(renderUbootMachineScript({ plan: { kind: 'unsupported', reason: 'a ${x} b' }, mac })).not.toContain('$');
  });

  it('the pxelinux entry carries the kernel, initramfs and arm64 arguments with the config URL', () => {
    const cfg = renderPxelinuxConfig({ talosVersion: 'v1.14.0', arch: 'arm64', configUrl: 'http://192.0.2.1:8080/talos/config/52:54:00:a6:00:01/tok', extraKernelArgs: ['panic=1'] });
    expect(cfg).toContain('kernel talos/v1.14.0/arm64/vmlinuz');
    expect(cfg).toContain('initrd talos/v1.14.0/arm64/initramfs.xz');
    expect(cfg).toMatch(/append talos\.platform=metal console=ttyAMA0 console=tty0 .* panic=1 talos\.config=http:\/\/192\.0\.2\.1:8080\/talos\/config\/52:54:00:a6:00:01\/tok\n/);
  });
});

describe('proxyDHCP and U-Boot', () => {
  const ctx = { serverIp: '192.0.2.1', baseUrl: 'http://192.0.2.1:8080', haveBinary: () => true };
  const discover = (vendor: string, arch: number) => {
    const p = decode(Buffer.from(readFileSync(path.join(import.meta.dirname, '../fixtures/dhcp/ovmf-pxe-discover.hex'), 'utf8').trim(), 'hex'));
    p.options.set(Option.VENDOR_CLASS, Buffer.from(vendor));
    p.options.set(Option.CLIENT_ARCH, Buffer.from([0, arch]));
    return decode(encode(p));
  };
  it('does not answer the DISCOVER real U-Boot sends, and says what the router must do', () => {
    const p = decode(Buffer.from(readFileSync(path.join(import.meta.dirname, '../fixtures/dhcp/uboot-armv8-discover.hex'), 'utf8').trim(), 'hex'));
    expect(proxyAnswer(p, 'dhcp', ctx)).toMatchObject({ kind: 'ignore', uboot: true, mac: '52:54:00:a6:00:01' });
  });

  it('does not answer U-Boot by vendor class or arch (it ignores proxy offers)', () => {
    for (const [vendor, arch] of [['U-Boot.armv8', 22], ['U-Boot', 21], ['PXEClient:Arch:00022:UNDI:003000', 22]] as const) {
      const a = proxyAnswer(discover(vendor, arch), 'dhcp', ctx);
      expect(a, vendor).toMatchObject({ kind: 'ignore', uboot: true, mac: expect.any(String) });
      expect(a.kind === 'ignore' && a.reason).toMatch(/next-server.*boot\.scr\.uimg/);
    }
    // U-Boot's EFI step announces arch 11 as a PXE client: that one is answered like AAVMF.
    expect(proxyAnswer(discover('PXEClient:Arch:00011:UNDI:003000', 11), 'dhcp', ctx)).toMatchObject({ kind: 'reply', bootfile: 'arm64-efi/snponly.efi' });
    expect(MessageType.DISCOVER).toBe(1);
  });
});

describe('EFI binaries by their PE header', () => {
  it('tells arm64 from x86-64 and refuses what is not an EFI application', async () => {
    const { inspectEfiBinary } = await import('../../src/assets/efi-binary.ts');
    const { fakePe } = await import('../helpers/pe.ts');
    expect(inspectEfiBinary(fakePe(0xaa64))).toEqual({ ok: true, arch: 'arm64' });
    expect(inspectEfiBinary(fakePe(0x8664))).toEqual({ ok: true, arch: 'amd64' });
    expect(inspectEfiBinary(fakePe(0x14c))).toMatchObject({ ok: false, problem: expect.stringMatching(/machine 0x14c/) });
    expect(inspectEfiBinary(fakePe(0xaa64, 3))).toMatchObject({ ok: false, problem: expect.stringMatching(/subsystem 3/) });
    expect(inspectEfiBinary(Buffer.from('#!ipxe\n'))).toMatchObject({ ok: false });
    const truncated = fakePe(0xaa64).subarray(0, 0x90);
    expect(inspectEfiBinary(truncated)).toMatchObject({ ok: false });
    // Debian's real x86-64 snponly.efi, where installed.
    const { existsSync, readFileSync } = await import('node:fs');
    if (existsSync('/usr/lib/ipxe/snponly.efi')) expect(inspectEfiBinary(readFileSync('/usr/lib/ipxe/snponly.efi').subarray(0, 4096))).toEqual({ ok: true, arch: 'amd64' });
  });
});

describe('Raspberry Pi 4 bootloader names', () => {
  it('takes the serial-number and MAC prefixes, and nothing else', async () => {
    const { classifyPiRequest } = await import('../../src/uboot/raspberry-pi.ts');
    expect(classifyPiRequest('1234abcd/start4.elf')).toEqual({ kind: 'rpi', board: '1234abcd', file: 'start4.elf' });
    expect(classifyPiRequest('dc-a6-32-01-02-03/overlays/miniuart-bt.dtbo')).toEqual({ kind: 'rpi', board: 'dc-a6-32-01-02-03', file: 'overlays/miniuart-bt.dtbo' });
    for (const n of ['start4.elf', '1234abc/start4.elf', '1234ABCD/start4.elf', 'arm64-efi/snponly.efi', 'genesis/x.scr.uimg', '1234abcd']) expect(classifyPiRequest(n), n).toBeUndefined();
  });
});
