// Real firmware on a real L2 segment, booting through Genesis's proxyDHCP: four VMs at once
// (SeaBIOS + iPXE ROM, OVMF + iPXE ROM, OVMF's own PXE client, OVMF's own UEFI HTTP Boot) on a
// namespace bridge where dnsmasq only hands out addresses. Two of them become control planes by
// the auto-assign policy; each boots the stand-in kernel and fetches its own config. Then the
// first is marked installed and its next PXE boot is sent to the local disk. Needs root.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';
import { buildStandin, stageStandin } from '../helpers/standin.ts';

const HERE = import.meta.dirname;
const FIRMWARES = ['bios', 'uefi', 'uefi-native', 'uefi-http'] as const;
const macOf = (i: number) => `52:54:00:e2:01:0${i + 1}`;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespace, bridge, taps, port 67)';
  for (const cmd of ['qemu-system-x86_64', 'ip', 'dnsmasq', 'busybox', 'apt-get', 'dpkg-deb', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed`;
  }
  if (!existsSync('/usr/share/ovmf/OVMF.fd')) return 'ovmf is not installed';
  if (!existsSync('/usr/lib/ipxe/snponly.efi')) return "Debian's ipxe package is not installed";
  const probe = `genesis-probe-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'cannot create a network namespace (ip netns add)';
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}
const skip = missing();
if (skip) console.warn(`L2 firmware boots skipped: ${skip}`);

type Log = Record<string, unknown> & { msg?: string; mac?: string };

describe.skipIf(skip !== undefined)('real firmware boots through the proxyDHCP on an L2 segment', () => {
  beforeAll(async () => {
    const built = await buildStandin();
    expect(built.ok, built.stderr).toBe(true);
  }, 600_000);

  it('four machines with mixed firmware at once: each boots, fetches its own config; then local boot once installed', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-e2e-l2-'));
    stageStandin(path.join(work, 'assets'));
    expect((await run('sh', [path.resolve(HERE, '../../scripts/copy-ipxe.sh'), '/usr/lib/ipxe', path.join(work, 'assets', 'ipxe')])).code).toBe(0);
    const r = await run('bash', [path.join(HERE, 'boot-l2.sh'), work, ...FIRMWARES], { timeoutMs: 420_000 });
    const serial = (name: string) => (existsSync(path.join(work, `serial-${name}.log`)) ? readFileSync(path.join(work, `serial-${name}.log`), 'latin1') : '');
    const log = readFileSync(path.join(work, 'genesis.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Log);
    const answered = (mac: string) => log.filter((l) => l.msg === 'proxyDHCP answered' && l.mac === mac).map((l) => l.client);

    const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
    const nodes = new Map(
      (db.prepare('SELECT mac, role, state, firmware FROM nodes').all() as Array<{ mac: string; role: string; state: string; firmware: string }>).map((n) => [n.mac, n]),
    );
    const served = db.prepare("SELECT mac, detail FROM node_events WHERE type = 'config-served'").all() as Array<{ mac: string; detail: string }>;
    db.close();

    const shaByRole = new Map<string, Set<string>>();
    FIRMWARES.forEach((fw, i) => {
      const mac = macOf(i);
      const out = serial(fw);
      const context = `${fw}: script stderr: ${r.stderr}\nserial tail:\n${out.slice(-2500)}`;
      // What the proxyDHCP told this machine: firmware PXE gets TFTP, HTTP Boot a URL, iPXE the script.
      // (The first machine boots a second time at the end: one more iPXE answer.)
      const expected = { bios: ['ipxe'], uefi: ['ipxe'], 'uefi-native': ['pxe', 'ipxe'], 'uefi-http': ['http', 'ipxe'] }[fw];
      expect(answered(mac), context).toEqual(i === 0 ? [...expected, 'ipxe'] : expected);
      expect(out, context).toContain(`STANDIN: mac ${mac}`);
      expect(out, context).toContain('STANDIN: done');
      // Its role from the policy, and the config it fetched is the one Genesis recorded for it.
      const node = nodes.get(mac)!;
      expect(node.firmware, context).toBe(fw === 'bios' ? 'bios' : 'uefi');
      expect(out, context).toContain(`STANDIN: machine.type ${node.role}`);
      const sha = /STANDIN: config sha256 ([0-9a-f]{64})/.exec(out)?.[1];
      const mine = served.filter((e) => e.mac === mac).map((e) => (JSON.parse(e.detail) as { sha256: string }).sha256);
      expect(mine, context).toContain(sha);
      shaByRole.set(node.role, (shaByRole.get(node.role) ?? new Set()).add(sha!));
    });
    expect([...nodes.values()].filter((n) => n.role === 'controlplane')).toHaveLength(2);
    // Auto-assigned nodes have no per-node settings: one config per role, different between roles.
    expect([...shaByRole.values()].map((set) => set.size)).toEqual([1, 1]);
    // The TFTP leg of the firmware-PXE machine went through Genesis's own TFTP server.
    expect(log.filter((l) => l.msg === 'tftp transfer' && l.file === 'snponly.efi').length).toBeGreaterThan(0);

    // Marked installed: the next PXE boot is sent to the local disk.
    expect(readFileSync(path.join(work, 'installed.status'), 'utf8').trim()).toBe('200');
    expect(serial(`${FIRMWARES[0]}-again`)).toContain(`is installed, leaving to the local disk`);
    expect(nodes.get(macOf(0))!.state).toBe('installed');
    rmSync(work, { recursive: true, force: true });
  }, 480_000);
});
