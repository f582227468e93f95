// Real U-Boot (Debian's u-boot-qemu, qemu_arm64, under QEMU/TCG) boots through Genesis on a
// private L2 segment: dnsmasq as the router naming boot.scr.uimg, Genesis's TFTP answering the
// boot script, the machine script and pxelinux.cfg/01-<mac>, the arm64 stand-in fetching its
// config over its tokenised URL. The board waits for a role first, then installs; marked
// installed, it boots again and U-Boot is sent on to its next target. Then under 5% and 10% frame
// loss each way. Needs root.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/store.ts';
import { run } from '../helpers/run.ts';
import { ARM64_STANDIN_CACHE, buildArm64Standin, importArm64StandinChecks, stageArm64Standin, stageArm64StandinProfile } from '../helpers/standin.ts';
import { commandMissing, hasCommand, netnsMissing } from '../helpers/host-tools.ts';

const HERE = import.meta.dirname;
const MAC = '52:54:00:a6:00:01';
const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const AAVMF = '/usr/share/AAVMF/AAVMF_CODE.fd';
const BIN = path.resolve(HERE, '../../bin/genesis.js');

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespace, bridge, tap, ports 67 and 69)';
  const tool = commandMissing(['qemu-system-aarch64', 'ip', 'dnsmasq', 'busybox', 'apt-get', 'dpkg-deb', 'curl']);
  if (tool) return tool;
  if (!existsSync(UBOOT)) return 'u-boot-qemu is not installed';
  return netnsMissing();
}
const skip = missing();
if (skip) console.warn(`U-Boot boots skipped: ${skip}`);
const noNft = !hasCommand('nft');
const noAavmf = !existsSync(AAVMF);
if (!skip && noAavmf) console.warn('AAVMF boots skipped: qemu-efi-aarch64 is not installed');

type Log = Record<string, unknown> & { msg?: string };
type Event = { type: string; detail: string };

/** TFTP transfers by outcome and the retransmissions, from the /metrics Genesis answered at the end of the run. */
function tftpCounts(text: string): { outcomes: Record<string, number>; retransmits: number } {
  const outcomes: Record<string, number> = {};
  for (const m of text.matchAll(/^genesis_tftp_transfers_total\{outcome="([^"]+)"\} (\d+)/gm)) outcomes[m[1]!] = Number(m[2]);
  return { outcomes, retransmits: Number(/^genesis_tftp_retransmits_total (\d+)/m.exec(text)?.[1] ?? NaN) };
}

/** The machine registered by MAC before it boots (as `genesis nodes add` does): its steps are on its timeline from the first DHCP answer. */
async function registerBeforeBoot(work: string): Promise<void> {
  mkdirSync(path.join(work, 'data'), { recursive: true, mode: 0o700 });
  const inventory = Inventory.open(path.join(work, 'data', 'genesis.db'));
  inventory.update(MAC, {}, 'test', { create: true });
  inventory.close();
}

async function bootUboot(env: Record<string, string>, prepare?: (work: string) => Promise<void>) {
  const work = mkdtempSync(path.join(tmpdir(), 'genesis-e2e-uboot-'));
  stageArm64Standin(path.join(work, 'assets'));
  await prepare?.(work);
  const r = await run('bash', [path.join(HERE, 'boot-uboot.sh'), work], { timeoutMs: 900_000, env: { ...process.env, ...env } });
  const serial = (name: string) => (existsSync(path.join(work, `serial-${name}.log`)) ? readFileSync(path.join(work, `serial-${name}.log`), 'latin1') : '');
  const log = readFileSync(path.join(work, 'genesis.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Log);
  const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
  const node = db.prepare('SELECT mac, role, state, arch, firmware, last_ip FROM nodes WHERE mac = ?').get(MAC) as Record<string, string> | undefined;
  const events = db.prepare('SELECT type, detail FROM node_events WHERE mac = ? ORDER BY id').all(MAC) as Event[];
  db.close();
  const file = (name: string) => (existsSync(path.join(work, name)) ? readFileSync(path.join(work, name), 'utf8') : '');
  const steps = (type: string) => events.filter((e) => e.type === type).map((e) => JSON.parse(e.detail) as Record<string, unknown>);
  return { work, stderr: r.stderr, serial, log, node, events, steps, file, tftp: tftpCounts(file('metrics.txt')) };
}

describe.skipIf(skip !== undefined)('real U-Boot (qemu_arm64) boots through Genesis', () => {
  beforeAll(async () => {
    const built = await buildArm64Standin();
    expect(built.ok, built.stderr).toBe(true);
  }, 600_000);

  it('the Debian kernel and initramfs it boots pass genesis assets import\'s checks; the other way round they are refused', async () => {
    const { asIs, swapped } = await importArm64StandinChecks();
    expect(asIs.code, asIs.stderr).toBe(0);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toMatch(/was given as the arm64 kernel, but it is an initramfs \(gzip\), not a kernel: are the kernel and the initramfs the other way round\?/);
  });

  it('waits for a role, installs (boot script, machine script, pxelinux entry, Talos assets over TFTP), then leaves for its next target once installed', async () => {
    const r = await bootUboot({ AGAIN: '1' });
    const out = r.serial('uboot');
    // Waiting: the machine script said why, and the loop asked again.
    expect(out.match(/recorded, no role yet/g)?.length ?? 0, out.slice(-3000)).toBeGreaterThanOrEqual(2);
    expect(r.file('assign.status').trim()).toBe('200');
    // Install: the stand-in got its own config over the tokenised URL, for its role.
    expect(out).toMatch(new RegExp(`STANDIN: mac ${MAC}`));
    expect(out).toMatch(/STANDIN: cmdline .*console=ttyAMA0 console=tty0 .*talos\.config=http:\/\/192\.0\.2\.1:8080\/talos\/config\/52:54:00:a6:00:01\/[0-9a-f]{64}/);
    expect(out).toMatch(/STANDIN: machine\.type controlplane/);
    const served = r.events.filter((e) => e.type === 'config-served');
    expect(served).toHaveLength(1);
    const sha = /STANDIN: config sha256 ([0-9a-f]{64})/.exec(out)?.[1];
    expect(sha).toBeDefined();
    expect(r.node).toMatchObject({ role: 'controlplane', arch: 'arm64', firmware: 'u-boot', last_ip: expect.stringMatching(/^192\.0\.2\./) });
    // The kernel went over TFTP with the window the boot script asked for, on the machine's timeline.
    const kernel = r.steps('tftp-served').find((t) => String(t['file']).endsWith('arm64/vmlinuz'));
    expect(kernel).toMatchObject({ windowsize: 8, blksize: 1468 });
    // Installed: its next boot is told to move on; nothing is installed again.
    expect(r.file('installed.status').trim()).toBe('200');
    const again = r.serial('uboot-again');
    expect(again).toContain('is installed, leaving to the next boot target');
    expect(again).not.toContain('pxelinux.cfg/01-');
    // Its DHCP reached the proxyDHCP, which noted it (U-Boot ignores proxy offers) without answering.
    expect(r.events.some((e) => e.type === 'dhcp-offered' && JSON.parse(e.detail).client === 'u-boot' && JSON.parse(e.detail).answered === false)).toBe(true);
  }, 900_000);

  // 5% is the arm64 issue's bar, and what `npm test` runs. GENESIS_E2E_UBOOT_LOSS=5,10 runs more:
  // at 10% U-Boot completes too, its timer firing 2–4 times of the 100 the boot script allows
  // (about 50–80 s a run; before the retransmission timer kept its backoff in bounds, it gave the
  // kernel up: docs/tftp.md).
  it.skipIf(noNft).each((process.env.GENESIS_E2E_UBOOT_LOSS ?? '5').split(','))('completes its install with %s percent of frames lost each way', async (loss) => {
    const r = await bootUboot({ LOSS: loss });
    const out = r.serial('uboot');
    expect(out, out.slice(-3000)).toMatch(/STANDIN: machine\.type controlplane/);
    const { outcomes, retransmits } = r.tftp;
    const lost = Object.entries(outcomes).filter(([o, n]) => !['ok', 'aborted', 'unconfirmed'].includes(o) && n > 0);
    // U-Boot prints "T " in its progress lines each time its own 5 s timer fires.
    const stalls = out.split('\n').filter((l) => /^(Loading:|\t)/.test(l)).join('').match(/T /g)?.length ?? 0;
    console.log(`U-Boot at ${loss}% loss: ${stalls} U-Boot timeouts (1 s each; the boot script allows 100 per file); TFTP transfers by outcome ${JSON.stringify(outcomes)}; ${retransmits} retransmissions; nft: ${(r.file('nft.txt').match(/counter packets \d+/g) ?? []).join(', ')}`);
    expect(outcomes['ok']).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect(r.file('nft.txt')).toMatch(/counter packets [1-9]/);
  }, 900_000);

  // UEFI arm64 through the proxyDHCP. No arm64 iPXE binary can be had here (Debian ships none,
  // and nothing is downloaded from outside), so the arm64 stand-in kernel, an EFI application
  // itself (its EFI stub), is installed as arm64-efi/snponly.efi with `genesis assets ipxe`: the
  // test proves the firmware gets Genesis's answer and starts the first binary Genesis serves.
  const installStub = async (work: string) => {
    const r = await run(process.execPath, [BIN, 'assets', 'ipxe', path.join(work, 'assets', 'talos', 'v1.14.0', 'arm64', 'vmlinuz')], { env: { PATH: process.env.PATH, GENESIS_ASSETS_DIR: path.join(work, 'assets'), GENESIS_DATA_DIR: path.join(work, 'data') } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('installed ipxe/arm64-efi/snponly.efi (arm64)');
  };

  it.skipIf(noAavmf)('AAVMF PXE: the proxyDHCP answers arch 11 with arm64-efi/snponly.efi, fetched over TFTP and started', async () => {
    const r = await bootUboot({ FW: 'aavmf-pxe' }, async (work) => {
      await installStub(work);
      await registerBeforeBoot(work);
    });
    const out = r.serial('aavmf-pxe');
    expect(out, out.slice(-2000)).toContain('EFI stub: Booting Linux Kernel');
    expect(r.steps('dhcp-offered')[0]).toMatchObject({ client: 'pxe', arch: 11, bootfile: 'arm64-efi/snponly.efi' });
    // AAVMF probes the size first (and aborts that transfer), then fetches it with windowsize 4. The
    // machine never asks Genesis for a script here (the stand-in is the whole boot), so its TFTP is
    // not attributed to it: the counts are API state, the window is in the transfer's log line.
    expect(r.tftp.outcomes['aborted']).toBeGreaterThan(0);
    expect(r.tftp.outcomes['ok']).toBeGreaterThan(0);
    const fetched = r.log.filter((l) => l.msg === 'tftp transfer' && l.file === 'arm64-efi/snponly.efi');
    expect(fetched.some((t) => t.outcome === 'ok' && t.windowsize === 4)).toBe(true);
  }, 600_000);

  // arm64 UEFI with no arm64 iPXE at all: Debian's signed network GRUB, imported with
  // `genesis assets grub`, and Genesis's GRUB configs take the machine from power-on to its
  // installer, as iPXE would: waiting for a role, the install, then sent on once installed.
  const installGrub = async (work: string) => {
    const r = await run(process.execPath, [BIN, 'assets', 'grub', path.join(ARM64_STANDIN_CACHE, 'grubnetaa64.efi')], { env: { PATH: process.env.PATH, GENESIS_ASSETS_DIR: path.join(work, 'assets'), GENESIS_DATA_DIR: path.join(work, 'data') } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('installed grub/grubnetaa64.efi (arm64)');
  };

  // A Linux profile through each of the loaders that are not iPXE: U-Boot's pxelinux entry, GRUB's config.
  const k3sProfile = async (work: string) => {
    stageArm64StandinProfile(path.join(work, 'assets'), 'k3s');
    mkdirSync(path.join(work, 'profiles', 'k3s'), { recursive: true });
    writeFileSync(path.join(work, 'profiles', 'k3s', 'profile.yaml'), 'kind: cloud-init\nrecipe: k3s\ncmdline: [console=ttyAMA0, panic=1, "ds=nocloud;s={{ datasource_url }}"]\n');
  };
  for (const [fw, firmware] of [['uboot', 'u-boot'], ['aavmf-grub', 'uefi']] as const) {
    it.skipIf(fw === 'aavmf-grub' && noAavmf)(`${fw} with the k3s profile: boots the profile's kernel over TFTP with its datasource; the stand-in fetches it, claims init, phones home; installed`, async () => {
      const r = await bootUboot({ FW: fw, ASSIGN: '{"role":"controlplane","profile":"k3s"}' }, async (work) => {
        await k3sProfile(work);
        if (fw === 'aavmf-grub') await installGrub(work);
      });
      const out = r.serial('uboot');
      expect(r.file('assign.status').trim()).toBe('200');
      expect(out, out.slice(-3000)).toContain(`Genesis: booting k3s arm64 for ${MAC} as controlplane`);
      // The datasource argument arrived whole: neither U-Boot nor GRUB split it at its ';'.
      expect(out).toMatch(new RegExp(`STANDIN: cmdline .*console=ttyAMA0 panic=1 ds=nocloud;s=http://192\\.0\\.2\\.1:8080/cloud-init/${MAC}/[0-9a-f]{64}/`));
      expect(out).toContain('STANDIN: user-data is #cloud-config');
      expect(out).toContain('STANDIN: claim cluster-init: true');
      expect(out).toContain('STANDIN: phoned home');
      expect(r.steps('tftp-served').some((t) => String(t['file']).replace(/^\//, '') === 'linux/k3s/arm64/vmlinuz')).toBe(true);
      expect(r.node).toMatchObject({ role: 'controlplane', state: 'installed', firmware });
      expect(r.events.some((e) => e.type === 'bootstrap-claimed' && JSON.parse(e.detail).decision === 'init')).toBe(true);
    }, 900_000);
  }

  it.skipIf(noAavmf)('AAVMF through GRUB (no arm64 iPXE): waits for a role, installs over its tokenised config URL, then leaves for its next boot option once installed', async () => {
    const r = await bootUboot({ FW: 'aavmf-grub', AGAIN: '1' }, installGrub);
    const out = r.serial('uboot');
    expect(out.match(/recorded, no role yet/g)?.length ?? 0, out.slice(-3000)).toBeGreaterThanOrEqual(2);
    expect(r.file('assign.status').trim()).toBe('200');
    expect(out).toMatch(/STANDIN: cmdline .*console=ttyAMA0 console=tty0 .*talos\.config=http:\/\/192\.0\.2\.1:8080\/talos\/config\/52:54:00:a6:00:01\/[0-9a-f]{64}/);
    expect(out).toMatch(/STANDIN: config sha256 [0-9a-f]{64}/);
    expect(out).toMatch(/STANDIN: machine\.type controlplane/);
    expect(r.events.filter((e) => e.type === 'config-served')).toHaveLength(1);
    expect(r.node).toMatchObject({ role: 'controlplane', arch: 'arm64', firmware: 'uefi', last_ip: expect.stringMatching(/^192\.0\.2\./) });
    // The proxyDHCP, with no arm64 iPXE, named GRUB too (an answer before the machine was known, on its timeline since).
    expect(r.steps('dhcp-offered')[0]).toMatchObject({ client: 'pxe', arch: 11, bootfile: 'grub/grubnetaa64.efi' });
    expect(r.steps('tftp-served').some((t) => String(t['file']).endsWith('arm64/vmlinuz'))).toBe(true);
    expect(r.file('installed.status').trim()).toBe('200');
    const again = r.serial('uboot-again');
    expect(again).toContain('is installed, leaving to the next boot option');
    // GRUB's exit handed the machine back to the firmware, which started its next boot option.
    expect(again.slice(again.indexOf('is installed'))).toMatch(/BdsDxe: starting Boot0000/);
    expect(again).not.toContain('STANDIN:');
  }, 900_000);

  it.skipIf(noAavmf || noNft)('AAVMF through GRUB completes its install with 5 percent of frames lost each way', async () => {
    const r = await bootUboot({ FW: 'aavmf-grub', LOSS: '5' }, installGrub);
    const out = r.serial('uboot');
    expect(out, out.slice(-3000)).toMatch(/STANDIN: machine\.type controlplane/);
    const { outcomes, retransmits } = r.tftp;
    const lost = Object.entries(outcomes).filter(([o, n]) => !['ok', 'aborted', 'unconfirmed'].includes(o) && n > 0);
    console.log(`AAVMF + GRUB at 5% loss: TFTP transfers by outcome ${JSON.stringify(outcomes)}; ${retransmits} retransmissions; nft: ${(r.file('nft.txt').match(/counter packets \d+/g) ?? []).join(', ')}`);
    expect(outcomes['ok']).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect(r.file('nft.txt')).toMatch(/counter packets [1-9]/);
  }, 900_000);

  it.skipIf(noAavmf)('AAVMF UEFI HTTP Boot: the proxyDHCP answers arch 19 with the URL, served as application/efi and started', async () => {
    const r = await bootUboot({ FW: 'aavmf-http' }, async (work) => {
      await installStub(work);
      await registerBeforeBoot(work);
    });
    const out = r.serial('aavmf-http');
    expect(out, out.slice(-2000)).toContain('EFI stub: Booting Linux Kernel');
    expect(r.steps('dhcp-offered')[0]).toMatchObject({ client: 'http', arch: 19, bootfile: 'http://192.0.2.1:8080/assets/ipxe/arm64-efi/snponly.efi' });
  }, 600_000);
});
