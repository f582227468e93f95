// The router recipes for dnsmasq, ISC dhcpd and Kea (docs/router-recipes.md), run as written by
// the real servers in a pair of test network namespaces joined by a veth (192.0.2.0/25, no route
// out): each kind of client (the firmware's own PXE, BIOS and UEFI, UEFI HTTP Boot for x86-64 and
// arm64, and iPXE after them) gets the boot file the recipe means. The recipe text is taken from
// the doc, so the doc cannot drift from what was checked.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';

const RECIPES = readFileSync(path.resolve(import.meta.dirname, '../../docs/router-recipes.md'), 'utf8');
const PROBE = path.resolve(import.meta.dirname, '../helpers/dhcp-probe.ts');
const GENESIS = '10.69.1.5';
const S = `gen-rs-${process.pid}`;
const C = `gen-rc-${process.pid}`;

/** The first fenced block after the line that names `marker`. */
function recipe(marker: string): string {
  const at = RECIPES.indexOf(marker);
  if (at < 0) throw new Error(`docs/router-recipes.md has no ${marker}`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(RECIPES.slice(at));
  return m![1]!.replace(/^ {2}/gm, '');
}

let usable = '';
const servers: ChildProcess[] = [];

beforeAll(async () => {
  const ns = async (...args: string[]) => {
    const r = await run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  try {
    await ns('netns', 'add', S);
    await ns('netns', 'add', C);
    await ns('link', 'add', 'vs', 'netns', S, 'type', 'veth', 'peer', 'name', 'vc', 'netns', C);
    await ns('-n', S, 'addr', 'add', '192.0.2.1/25', 'dev', 'vs');
    await ns('-n', S, 'link', 'set', 'vs', 'up');
    await ns('-n', C, 'link', 'set', 'vc', 'up');
    // Only so the client's broadcast has a way out of its namespace: the veth, nothing else.
    await ns('-n', C, 'route', 'add', 'default', 'dev', 'vc');
    usable = 'yes';
  } catch (err) {
    usable = (err as Error).message;
  }
});

afterAll(async () => {
  for (const p of servers) p.kill('SIGKILL');
  await run('ip', ['netns', 'del', S]);
  await run('ip', ['netns', 'del', C]);
});

/** Start a server in the server namespace and wait until it logs `ready`. */
async function serve(cmd: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', S, ...cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(p);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const look = (d: Buffer) => {
      out += d;
      if (ready.test(out)) resolve();
    };
    p.stdout!.on('data', look);
    p.stderr!.on('data', look);
    p.on('exit', (code) => reject(new Error(`${cmd[0]} exited (${code}): ${out}`)));
  });
  return p;
}

async function offer(fixture: string, noIpxe = false, arch?: number): Promise<{ siaddr: string; file: string; vendorClass: string | null }> {
  const flags = noIpxe ? ['--no-ipxe'] : arch !== undefined ? ['--arch', String(arch)] : [];
  const r = await run('ip', ['netns', 'exec', C, process.execPath, PROBE, fixture, ...flags], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`probe ${fixture}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { siaddr: string; file: string; vendorClass: string | null };
}

/** What each kind of client must be offered: the iPXE script over HTTP, or the right iPXE binary over TFTP from Genesis. */
async function expectRecipe(): Promise<void> {
  expect(await offer('ovmf-pxe-discover')).toMatchObject({ siaddr: GENESIS, file: 'snponly.efi' });
  expect(await offer('ipxe-bios-rom-discover', true)).toMatchObject({ siaddr: GENESIS, file: 'undionly.kpxe' });
  expect((await offer('ipxe-bios-rom-discover')).file).toBe(`http://${GENESIS}:8080/boot.ipxe`);
  expect((await offer('ipxe-snponly-after-ovmf-pxe-discover')).file).toBe(`http://${GENESIS}:8080/boot.ipxe`);
  // UEFI HTTP Boot: the binary's URL, and option 60 HTTPClient (UEFI will not download without it).
  expect(await offer('ovmf-http-boot-discover')).toMatchObject({ file: `http://${GENESIS}:8080/assets/ipxe/snponly.efi`, vendorClass: 'HTTPClient' });
  expect(await offer('ovmf-http-boot-discover', false, 19)).toMatchObject({ file: `http://${GENESIS}:8080/assets/ipxe/arm64-efi/snponly.efi`, vendorClass: 'HTTPClient' });
  expect((await offer('ipxe-snponly-after-http-boot-discover')).file).toBe(`http://${GENESIS}:8080/boot.ipxe`);
}

const have = async (cmd: string) => (await run('sh', ['-c', `command -v ${cmd}`])).code === 0;

describe('router recipes in docs/router-recipes.md, run by the real servers', () => {
  it('dnsmasq', async (ctx) => {
    if (usable !== 'yes') ctx.skip(`no test namespaces here: ${usable}`);
    if (!(await have('dnsmasq'))) ctx.skip('dnsmasq is not installed (Debian: dnsmasq-base)');
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-dnsmasq-'));
    const conf = path.join(dir, 'dnsmasq.conf');
    writeFileSync(conf, `${recipe('**dnsmasq, Pi-hole')}\ndhcp-range=192.0.2.100,192.0.2.120,255.255.255.128,10m\n`);
    const check = await run('dnsmasq', ['--test', `--conf-file=${conf}`]);
    expect(check.code, check.stderr).toBe(0);
    const p = await serve(
      ['dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`, '--port=0', '--interface=vs', '--bind-interfaces', '--no-ping', `--dhcp-leasefile=${dir}/leases`, `--pid-file=${dir}/pid`, '--log-dhcp', '--log-facility=-'],
      /DHCP, IP range/,
    );
    try {
      await expectRecipe();
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('ISC dhcpd', async (ctx) => {
    if (usable !== 'yes') ctx.skip(`no test namespaces here: ${usable}`);
    if (!(await have('dhcpd'))) ctx.skip('dhcpd is not installed (Debian: isc-dhcp-server)');
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-dhcpd-'));
    const conf = path.join(dir, 'dhcpd.conf');
    writeFileSync(conf, `authoritative;\n${recipe('**ISC dhcpd**')}\nsubnet 192.0.2.0 netmask 255.255.255.128 {\n  range 192.0.2.100 192.0.2.120;\n}\n`);
    writeFileSync(path.join(dir, 'leases'), '');
    // -t first: the recipe is valid as dhcpd reads it.
    const check = await run('dhcpd', ['-4', '-t', '-cf', conf]);
    expect(check.code, check.stderr).toBe(0);
    const p = await serve(['dhcpd', '-4', '-f', '-d', '-cf', conf, '-lf', path.join(dir, 'leases'), '-pf', path.join(dir, 'pid'), 'vs'], /Sending on\s+Socket/);
    try {
      await expectRecipe();
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('ISC Kea', async (ctx) => {
    if (usable !== 'yes') ctx.skip(`no test namespaces here: ${usable}`);
    if (!(await have('kea-dhcp4'))) ctx.skip('kea-dhcp4 is not installed (Debian: kea-dhcp4-server)');
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-kea-'));
    const classes = JSON.parse(`{${recipe('**ISC Kea**')}}`) as Record<string, unknown>;
    const conf = path.join(dir, 'kea.json');
    writeFileSync(
      conf,
      JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: ['vs'], 'dhcp-socket-type': 'raw' },
          'lease-database': { type: 'memfile', persist: false },
          'valid-lifetime': 600,
          ...classes,
          subnet4: [{ id: 1, subnet: '192.0.2.0/25', pools: [{ pool: '192.0.2.100 - 192.0.2.120' }] }],
          loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'INFO' }],
        },
      }),
    );
    const env = { KEA_LOCKFILE_DIR: dir, KEA_PIDFILE_DIR: dir };
    // Checked where it runs: Kea's check includes the interface.
    const check = await run('ip', ['netns', 'exec', S, 'kea-dhcp4', '-t', conf], { env: { ...process.env, ...env } });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const p = await serve(['kea-dhcp4', '-c', conf], /DHCP4_STARTED|server version .* started/, env);
    try {
      await expectRecipe();
    } finally {
      p.kill('SIGKILL');
    }
  });
});
