// Real firmware on a real L2 segment (a namespace bridge with taps, dnsmasq as the LAN's DHCP
// server), booting through Genesis. Through the proxyDHCP: four VMs at once (SeaBIOS + iPXE ROM,
// OVMF + iPXE ROM, OVMF's own PXE client, OVMF's own UEFI HTTP Boot), two of them control planes
// by the auto-assign policy, each fetching its own config; then one is marked installed and its
// next PXE boot goes to the local disk. Through a "router" (dnsmasq naming the boot file). And
// under 5% frame loss each way (the DHCP servers' replies aside). Needs root.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';
import { buildStandin, importStandinChecks, stageStandin } from '../helpers/standin.ts';
import { commandMissing, hasCommand, netnsMissing } from '../helpers/host-tools.ts';

const HERE = import.meta.dirname;
const FIRMWARES = ['bios', 'uefi', 'uefi-native', 'uefi-http'] as const;
const macOf = (i: number) => `52:54:00:e2:01:0${i + 1}`;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespace, bridge, taps, port 67)';
  const tool = commandMissing(['qemu-system-x86_64', 'ip', 'dnsmasq', 'busybox', 'apt-get', 'dpkg-deb', 'curl']);
  if (tool) return tool;
  if (!existsSync('/usr/share/ovmf/OVMF.fd')) return 'ovmf is not installed';
  if (!existsSync('/usr/lib/ipxe/snponly.efi')) return "Debian's ipxe package is not installed";
  return netnsMissing();
}
const skip = missing();
if (skip) console.warn(`L2 firmware boots skipped: ${skip}`);
const noNft = !hasCommand('nft');
if (!skip && noNft) console.warn('L2 loss test skipped: nft (nftables) is not installed');

type Log = Record<string, unknown> & { msg?: string; mac?: string };

describe.skipIf(skip !== undefined)('real firmware boots through the proxyDHCP on an L2 segment', () => {
  beforeAll(async () => {
    const built = await buildStandin();
    expect(built.ok, built.stderr).toBe(true);
  }, 600_000);

  it('the Debian kernel and initramfs it boots pass genesis assets import\'s checks; the other way round they are refused', async () => {
    const { asIs, swapped } = await importStandinChecks();
    expect(asIs.code, asIs.stderr).toBe(0);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toMatch(/was given as the amd64 kernel, but it is an initramfs \(gzip\), not a kernel: are the kernel and the initramfs the other way round\?/);
  });

  type Run = {
    work: string;
    stderr: string;
    serial: (name: string) => string;
    log: Log[];
    nodes: Map<string, { mac: string; role: string; state: string; firmware: string }>;
    served: Array<{ mac: string; detail: string }>;
    events: Array<{ mac: string; type: string; at: string; detail: Record<string, unknown> }>;
  };

  /** Run boot-l2.sh with these firmwares and environment; read back logs and the inventory. */
  async function runL2(firmwares: readonly string[], env: Record<string, string>): Promise<Run> {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-e2e-l2-'));
    stageStandin(path.join(work, 'assets'));
    expect((await run('sh', [path.resolve(HERE, '../../scripts/copy-ipxe.sh'), '/usr/lib/ipxe', path.join(work, 'assets', 'ipxe')])).code).toBe(0);
    const r = await run('bash', [path.join(HERE, 'boot-l2.sh'), work, ...firmwares], { timeoutMs: 420_000, env: { ...process.env, ...env } });
    const serial = (name: string) => (existsSync(path.join(work, `serial-${name}.log`)) ? readFileSync(path.join(work, `serial-${name}.log`), 'latin1') : '');
    const log = readFileSync(path.join(work, 'genesis.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Log);
    const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
    const nodes = new Map(
      (db.prepare('SELECT mac, role, state, firmware FROM nodes').all() as Array<{ mac: string; role: string; state: string; firmware: string }>).map((n) => [n.mac, n]),
    );
    const served = db.prepare("SELECT mac, detail FROM node_events WHERE type = 'config-served'").all() as Array<{ mac: string; detail: string }>;
    // Every machine's recorded steps, oldest first (steps before discovery carry their own times).
    const events = (db.prepare('SELECT mac, type, at, detail FROM node_events ORDER BY at, id').all() as Array<{ mac: string; type: string; at: string; detail: string }>).map((e) => ({ ...e, detail: JSON.parse(e.detail) as Record<string, unknown> }));
    db.close();
    return { work, stderr: r.stderr, serial, log, nodes, served, events };
  }

  /** Each VM booted the stand-in, which fetched the config Genesis recorded serving to that MAC, for its role. */
  function expectBooted(r: Run, firmwares: readonly string[]): Map<string, Set<string>> {
    const shaByRole = new Map<string, Set<string>>();
    firmwares.forEach((fw, i) => {
      const mac = macOf(i);
      const out = r.serial(fw);
      const context = `${fw}: script stderr: ${r.stderr}\nserial tail:\n${out.slice(-2500)}`;
      expect(out, context).toContain(`STANDIN: mac ${mac}`);
      expect(out, context).toContain('STANDIN: done');
      const node = r.nodes.get(mac)!;
      expect(node.firmware, context).toBe(fw === 'bios' ? 'bios' : 'uefi');
      expect(out, context).toContain(`STANDIN: machine.type ${node.role}`);
      const sha = /STANDIN: config sha256 ([0-9a-f]{64})/.exec(out)?.[1];
      const mine = r.served.filter((e) => e.mac === mac).map((e) => (JSON.parse(e.detail) as { sha256: string }).sha256);
      expect(mine, context).toContain(sha);
      shaByRole.set(node.role, (shaByRole.get(node.role) ?? new Set()).add(sha!));
    });
    return shaByRole;
  }

  it('four machines with mixed firmware at once through the proxyDHCP: each boots and fetches its own config; then local boot once installed', async () => {
    const r = await runL2(FIRMWARES, { MODE: 'proxy', AGAIN: '1' });
    const answered = (mac: string) => r.events.filter((e) => e.type === 'dhcp-offered' && e.mac === mac).map((e) => e.detail['client']);
    FIRMWARES.forEach((fw, i) => {
      // What the proxyDHCP told each machine: firmware PXE gets TFTP, HTTP Boot a URL, iPXE the
      // script. (The first machine boots a second time at the end: one more iPXE answer.)
      const expected = { bios: ['ipxe'], uefi: ['ipxe'], 'uefi-native': ['pxe', 'ipxe'], 'uefi-http': ['http', 'ipxe'] }[fw];
      expect(answered(macOf(i)), fw).toEqual(i === 0 ? [...expected, 'ipxe'] : expected);
    });
    const shaByRole = expectBooted(r, FIRMWARES);
    expect([...r.nodes.values()].filter((n) => n.role === 'controlplane')).toHaveLength(2);
    // Auto-assigned nodes have no per-node settings: one config per role, different between roles.
    expect([...shaByRole.values()].map((set) => set.size)).toEqual([1, 1]);
    // The TFTP leg of the firmware-PXE machine went through Genesis's own TFTP server, on its timeline.
    expect(r.events.filter((e) => e.type === 'tftp-served' && e.detail['file'] === 'snponly.efi').length).toBeGreaterThan(0);

    // Marked installed: the next PXE boot is sent to the local disk.
    expect(readFileSync(path.join(r.work, 'installed.status'), 'utf8').trim()).toBe('200');
    expect(r.serial(`${FIRMWARES[0]}-again`)).toContain('is installed, leaving to the local disk');
    expect(r.nodes.get(macOf(0))!.state).toBe('installed');
    rmSync(r.work, { recursive: true, force: true });
  }, 480_000);

  it('plain-router mode: the LAN DHCP names next-server and the file (with the iPXE user-class rule), no proxyDHCP', async () => {
    const fws = ['bios', 'uefi-native'] as const;
    const r = await runL2(fws, { MODE: 'router' });
    expectBooted(r, fws);
    expect(r.events.filter((e) => e.type === 'dhcp-offered')).toEqual([]);
    expect(r.events.filter((e) => e.type === 'tftp-served' && e.detail['file'] === 'snponly.efi').length).toBeGreaterThan(0);
    rmSync(r.work, { recursive: true, force: true });
  }, 480_000);

  it('two LANs: a machine on the other one is never answered onto its LAN', async () => {
    const r = await runL2(['bios'], { MODE: 'proxy', FOREIGN: '1' });
    expectBooted(r, ['bios']);
    const nft = readFileSync(path.join(r.work, 'nft.txt'), 'utf8');
    const counted = (table: string) => Number(new RegExp(`table netdev ${table} [\\s\\S]*?counter packets (\\d+)`).exec(nft)?.[1]);
    expect(counted('watch0'), nft).toBeGreaterThan(0);
    expect(counted('watchf'), nft).toBe(0);
    // The foreign machine got an address from its own LAN's DHCP server, and nothing to boot.
    const foreign = r.serial('foreign');
    expect(foreign).toContain('52:54:00:e2:02:01');
    expect(foreign).not.toContain('Genesis:');
    rmSync(r.work, { recursive: true, force: true });
  }, 480_000);

  it('a router that hands the iPXE binary to iPXE too: the machine loops, and Genesis says why', async () => {
    const r = await runL2(['bios'], { MODE: 'router-plain' });
    // The machine never reaches its script, so it is never recorded: the log is where Genesis says it.
    const warning = r.log.find((l) => l.msg?.includes('is loading iPXE again and again'));
    expect(warning, r.stderr).toMatchObject({ level: 40, file: 'undionly.kpxe', msg: expect.stringContaining('dhcp.proxy: true') });
    expect(r.serial('bios')).not.toContain('STANDIN: done');
    rmSync(r.work, { recursive: true, force: true });
  }, 480_000);

  // The DHCP servers' replies are not dropped (boot-l2.sh says why): the clients' own DHCP frames,
  // TFTP and HTTP are, each way.
  it.skipIf(noNft)('5% frame loss each way on every machine (the DHCP servers\' replies aside): all still boot', async () => {
    const fws = ['bios', 'uefi', 'uefi-native'] as const;
    const r = await runL2(fws, { MODE: 'proxy', LOSS: '5' });
    expectBooted(r, fws);
    const nft = readFileSync(path.join(r.work, 'nft.txt'), 'utf8');
    const sum = (re: RegExp) => [...nft.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
    expect(sum(/counter packets (\d+) bytes \d+ drop/g), nft).toBeGreaterThan(10);
    // The exemption matched the DHCP replies (and nothing else was spared).
    expect(sum(/udp sport 67 counter packets (\d+) bytes \d+ accept/g), nft).toBeGreaterThan(0);
    rmSync(r.work, { recursive: true, force: true });
  }, 480_000);
});
