// The U-Boot and Raspberry Pi TFTP names against a real Genesis, fetched with a real TFTP client
// (curl) in the order the firmware asks for them: U-Boot's boot script, machine script and
// pxe get's names through a board's states; the Pi 4 bootloader's prefixed firmware requests.
// The same conversation with real U-Boot under QEMU is test/e2e/boot-uboot.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeScriptImage } from '../../src/uboot/script-image.ts';
import { startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { run } from '../helpers/run.ts';

let g: TestGenesis;
let out: string;
const MAC = '52:54:00:a6:00:07';

beforeAll(async () => {
  g = await startGenesis({ GENESIS_AUTO_ASSIGN_ENABLED: 'false' });
  out = mkdtempSync(path.join(tmpdir(), 'genesis-uboot-tftp-'));
  mkdirSync(path.join(g.assetsDir, 'rpi', 'overlays'), { recursive: true });
  for (const f of ['start4.elf', 'fixup4.dat', 'u-boot.bin', 'bcm2711-rpi-4-b.dtb']) writeFileSync(path.join(g.assetsDir, 'rpi', f), `pi firmware ${f}\n`);
  writeFileSync(path.join(g.assetsDir, 'rpi', 'overlays', 'miniuart-bt.dtbo'), 'overlay\n');
});
afterAll(async () => {
  await g.close();
  rmSync(out, { recursive: true, force: true });
});

let n = 0;
/** One TFTP GET with curl: the bytes, or curl's exit code (68: file not found, 69: access violation). */
async function tftp(name: string): Promise<{ code: number | null; data: Buffer }> {
  const dest = path.join(out, `f${n++}`);
  const r = await run('curl', ['-sS', '--tftp-blksize', '1468', '-o', dest, `tftp://127.0.0.1:${g.tftpPort}/${name}`]);
  return { code: r.code, data: r.code === 0 ? readFileSync(dest) : Buffer.alloc(0) };
}
const script = async (name: string) => {
  const r = await tftp(name);
  expect(r.code, name).toBe(0);
  const d = decodeScriptImage(r.data);
  if (!d.ok) throw new Error(`${name}: ${d.reason}`);
  return d.script;
};

describe('a U-Boot board through its states, over TFTP', () => {
  it('boot script; unknown board recorded and told to wait; pxe names not found until it may install; then the install entry with its own config URL; installed: stop', async () => {
    expect(await script('boot.scr.uimg')).toContain('genesis/${ethaddr}.scr.uimg');
    // First machine-script request: the board is recorded, arm64 / u-boot, and waits for a role.
    expect(await script(`genesis/${MAC}.scr.uimg`)).toContain('no role yet');
    expect(await (await g.api('GET', `/nodes/${MAC}`)).json()).toMatchObject({ mac: MAC, arch: 'arm64', firmware: 'u-boot', role: 'unassigned', lastIp: '127.0.0.1' });
    // pxe get's names: nothing for it yet, and never a shared default.
    for (const name of [`pxelinux.cfg/01-${MAC.replace(/:/g, '-')}`, 'pxelinux.cfg/7F000001', 'pxelinux.cfg/7F', 'pxelinux.cfg/default-arm', 'pxelinux.cfg/default']) {
      expect((await tftp(name)).code, name).toBe(68);
    }
    expect((await g.api('PATCH', `/nodes/${MAC}`, { role: 'worker' })).status).toBe(200);
    expect(await script(`genesis/${MAC}.scr.uimg`)).toContain('if pxe get; then pxe boot; fi');
    const entry = (await tftp(`pxelinux.cfg/01-${MAC.replace(/:/g, '-')}`)).data.toString();
    expect(entry).toMatch(/^ {2}kernel talos\/v1\.14\.0\/arm64\/vmlinuz$/m);
    const url = /talos\.config=(\S+)/.exec(entry)?.[1];
    expect(url).toMatch(new RegExp(`/talos/config/${MAC}/[0-9a-f]{64}$`));
    // The kernel and initramfs pxe boot then asks for, and the config at that URL.
    expect((await tftp('talos/v1.14.0/arm64/vmlinuz')).data.toString()).toBe('placeholder kernel v1.14.0 arm64\n');
    expect((await tftp('talos/v1.14.0/arm64/initramfs.xz')).code).toBe(0);
    const cfg = await fetch(url!.replace('http://127.0.0.1:8080', g.url));
    expect(cfg.status).toBe(200);
    expect(await cfg.text()).toMatch(/type: worker/);
    // Installed: the script ends the loop, and no install entry is handed out any more.
    expect((await g.api('POST', `/nodes/${MAC}/installed`)).status).toBe(200);
    expect(await script(`genesis/${MAC}.scr.uimg`)).toContain('setenv genesis_loop 0');
    expect((await tftp(`pxelinux.cfg/01-${MAC.replace(/:/g, '-')}`)).code).toBe(68);
    // Nothing outside talos/<version>/<arch>/{vmlinuz,initramfs.xz} below talos/.
    expect((await tftp('talos/v1.14.0/arm64/../../../data/secrets.yaml')).code).not.toBe(0);
  });
});

describe('a U-Boot board with the k3s profile, over TFTP', () => {
  it('gets a pxelinux entry for the profile\'s kernel with its own datasource URL, the kernel and initrd over TFTP, and its documents over HTTP', async () => {
    const mac = '52:54:00:a6:00:08';
    const dir = path.join(g.assetsDir, 'k3s', 'arm64');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'vmlinuz'), 'k3s kernel arm64\n');
    writeFileSync(path.join(dir, 'initrd'), 'k3s initrd arm64\n');
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'controlplane', profile: 'k3s' })).status).toBe(201);
    expect(await script(`genesis/${mac}.scr.uimg`)).toContain(`Genesis: booting k3s arm64 for ${mac} as controlplane`);
    const entry = (await tftp(`pxelinux.cfg/01-${mac.replace(/:/g, '-')}`)).data.toString();
    expect(entry).toMatch(/^ {2}kernel linux\/k3s\/arm64\/vmlinuz$/m);
    expect(entry).toMatch(/^ {2}initrd linux\/k3s\/arm64\/initrd$/m);
    const ds = new RegExp(`^ {2}append ip=dhcp ds=nocloud;s=(http://127\\.0\\.0\\.1:\\d+/cloud-init/${mac}/[0-9a-f]{64}/)$`, 'm').exec(entry)?.[1];
    expect(ds, entry).toBeDefined();
    expect((await tftp('linux/k3s/arm64/vmlinuz')).data.toString()).toBe('k3s kernel arm64\n');
    expect((await tftp('linux/k3s/arm64/initrd')).data.toString()).toBe('k3s initrd arm64\n');
    expect((await tftp('linux/k3s/arm64/missing')).code).toBe(68);
    expect((await tftp('linux/k3s/arm64/../../../data/secrets.yaml')).code).not.toBe(0);
    const meta = await fetch(`${ds}meta-data`);
    expect(meta.status).toBe(200);
    expect(await meta.text()).toContain(`instance-id: genesis-${mac.replace(/:/g, '')}-`);
  });
});

describe('a Raspberry Pi 4 from its EEPROM bootloader', () => {
  it('serves the firmware below the serial-number prefix (and the MAC prefix) from assets/rpi, with a config.txt that starts U-Boot', async () => {
    for (const prefix of ['1234abcd', 'dc-a6-32-01-02-03']) {
      // The bootloader's order: start4.elf, config.txt, fixup4.dat, then what config.txt names.
      expect((await tftp(`${prefix}/start4.elf`)).data.toString()).toBe('pi firmware start4.elf\n');
      const config = (await tftp(`${prefix}/config.txt`)).data.toString();
      expect(config).toMatch(/^arm_64bit=1$/m);
      expect(config).toMatch(/^kernel=u-boot\.bin$/m);
      expect((await tftp(`${prefix}/fixup4.dat`)).code).toBe(0);
      expect((await tftp(`${prefix}/bcm2711-rpi-4-b.dtb`)).code).toBe(0);
      expect((await tftp(`${prefix}/overlays/miniuart-bt.dtbo`)).data.toString()).toBe('overlay\n');
      expect((await tftp(`${prefix}/u-boot.bin`)).data.toString()).toBe('pi firmware u-boot.bin\n');
      // What is not there is "file not found", so the bootloader moves on (cmdline.txt is optional).
      expect((await tftp(`${prefix}/cmdline.txt`)).code).toBe(68);
    }
    // An operator's own config.txt wins over the written one.
    writeFileSync(path.join(g.assetsDir, 'rpi', 'config.txt'), 'arm_64bit=1\nkernel=u-boot.bin\n# mine\n');
    expect((await tftp('1234abcd/config.txt')).data.toString()).toContain('# mine');
  });
});
