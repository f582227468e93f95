// `genesis doctor` as a real process on this host: a taken port (and who holds it), an address
// that is not ours, missing binaries and assets, an unwritable data dir; a good setup passes.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { LATEST_SCHEMA, MIGRATIONS } from '../../src/inventory/migrations.ts';
import { stageTalosPlaceholders } from '../helpers/genesis-app.ts';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';
import { commandMissing, netnsMissing } from '../helpers/host-tools.ts';

function setup(opts: { assets?: boolean } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-doctor-'));
  const assets = path.join(dir, 'assets');
  mkdirSync(path.join(assets, 'ipxe'), { recursive: true });
  if (opts.assets) {
    for (const f of ['undionly.kpxe', 'snponly.efi']) writeFileSync(path.join(assets, 'ipxe', f), 'x');
    stageTalosPlaceholders(assets, ['v1.14.0'], ['amd64']);
  }
  return { dir, env: { GENESIS_DATA_DIR: path.join(dir, 'data'), GENESIS_ASSETS_DIR: assets, GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443' } };
}
const doctor = (env: Record<string, string>, args: string[] = []) =>
  run(process.execPath, [BIN, 'doctor', ...args], {
    env: { PATH: process.env.PATH, GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_ENABLED: 'false', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0', ...env },
  });

describe('genesis doctor', () => {
  it('finds nothing else wrong with a good setup; loopback (all a test may use) is no LAN address', async () => {
    const s = setup({ assets: true });
    const r = await doctor(s.env, ['--json']);
    const results = (JSON.parse(r.stdout) as { results: Array<{ id: string; status: string; title: string }> }).results;
    expect(results.filter((x) => x.status !== 'ok')).toEqual([
      expect.objectContaining({ id: 'advertise-local', status: 'fail', title: 'advertise_addr 127.0.0.1 is a loopback address: no machine can reach it' }),
    ]);
    expect(results.map((x) => x.id)).toEqual(['node-version', 'advertise-local', 'docker-desktop', 'cluster-endpoint', 'ipxe-binaries', 'talos-v1.14.0-amd64', 'downloads', 'data-dir', 'clock']);
    // The addon npm ci built loads: downloads go out with sendfile.
    expect(results.find((x) => x.id === 'downloads')?.title).toBe('large downloads are sent with sendfile, from a thread of their own');
  });

  it('with TFTP on, says the TFTP pump npm ci built sends its blocks', async () => {
    const s = setup({ assets: true });
    const r = await doctor({ ...s.env, GENESIS_TFTP_ENABLED: 'true', GENESIS_TFTP_PORT: '0' }, ['--json']);
    const results = (JSON.parse(r.stdout) as { results: Array<{ id: string; status: string; title: string }> }).results;
    expect(results.find((x) => x.id === 'tftp-pump')).toEqual({ id: 'tftp-pump', status: 'ok', title: 'TFTP blocks of files in memory are sent by the native pump, from a thread of its own' });
  });

  it('finds a taken HTTP port and the process holding it', async () => {
    const s = setup({ assets: true });
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const r = await doctor({ ...s.env, GENESIS_HTTP_PORT: String(port) });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`FAIL  TCP 127\\.0\\.0\\.1:${port} \\(HTTP\\) is already in use by node.* \\(pid ${process.pid}\\)`));
      expect(r.stdout).not.toContain('MainThread');
    } finally {
      srv.close();
    }
  });

  it('run beside a running Genesis, reports its ports as served by it, not as a clash', async () => {
    const s = setup({ assets: true });
    const env = { GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_TFTP_ENABLED: 'false', GENESIS_EVENTS_HOST: '127.0.0.1', ...s.env };
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    const g = new GenesisProcess(['serve'], { ...env, GENESIS_HTTP_PORT: String(port), GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0' }, s.dir);
    try {
      await g.ready();
      const r = await doctor({ ...s.env, GENESIS_HTTP_PORT: String(port) }, ['--json']);
      const results = (JSON.parse(r.stdout) as { results: Array<{ id: string; status: string; title: string }> }).results;
      expect(results.find((x) => x.id === `port-tcp-${port}`)).toEqual({ id: `port-tcp-${port}`, status: 'ok', title: `TCP 127.0.0.1:${port} (HTTP) is served by the running Genesis (pid ${g.child.pid})` });
    } finally {
      g.kill('SIGTERM');
      await g.exit();
    }
  });

  it('reads the inventory without migrating or writing it: an older file is reported and left as it is, a newer one fails in one line', async () => {
    const s = setup({ assets: true });
    mkdirSync(path.join(s.dir, 'data'), { recursive: true });
    const file = path.join(s.dir, 'data', 'genesis.db');
    const raw = new Database(file);
    for (const m of MIGRATIONS.filter((m) => m.version <= 6)) raw.exec(m.sql);
    raw.pragma('user_version = 6');
    raw.close();
    const older = await doctor(s.env, ['--json']);
    const results = (JSON.parse(older.stdout) as { results: Array<{ id: string; status: string; title: string }> }).results;
    expect(results.find((x) => x.id === 'inventory')).toMatchObject({ status: 'warn', title: expect.stringMatching(/schema version 6; genesis serve upgrades it to \d+ at its next start/) });
    const again = new Database(file, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(6);
    again.close();
    const newer = new Database(file);
    newer.pragma(`user_version = ${LATEST_SCHEMA + 1}`);
    newer.close();
    const r = await doctor(s.env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}inventory .* has schema version \d+, newer than this Genesis knows/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('fails an address that is not on this host, missing iPXE binaries, and an unwritable data dir; warns about missing Talos assets', async () => {
    const s = setup();
    const file = path.join(s.dir, 'a-file');
    writeFileSync(file, '');
    const r = await doctor({ ...s.env, GENESIS_ADVERTISE_ADDR: '192.0.2.77', GENESIS_DATA_DIR: path.join(file, 'data'), GENESIS_CLUSTER_ENDPOINT: '' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  no Kubernetes API endpoint is set, so no machine config can be rendered: assigned machines wait instead of installing');
    expect(r.stdout).toContain('FAIL  advertise_addr 192.0.2.77 is not an address of this host');
    expect(r.stdout).toContain('FAIL  iPXE binaries missing from assets/ipxe: undionly.kpxe, snponly.efi');
    expect(r.stdout).toContain('WARN  Talos v1.14.0 amd64 kernel and initramfs are not downloaded');
    expect(r.stdout).toContain('fix: genesis assets fetch --talos v1.14.0 --arch amd64');
    expect(r.stdout).toMatch(/FAIL {2}data dir .*a-file\/data is not writable/);
  });

  it.skipIf(!existsSync('/usr/lib/ipxe/undionly.kpxe'))('gives a fix for missing iPXE binaries that works pasted as it is, from any directory', async () => {
    const s = setup();
    const before = await doctor(s.env);
    const fix = /FAIL {2}iPXE binaries missing[^\n]*\n(?: {6}[^\n]*\n)*? {6}fix: apt-get install ipxe && (sh [^\n]+)\n/.exec(before.stdout);
    expect(fix, before.stdout).not.toBeNull();
    // Debian's ipxe package is installed here (.ci/run): the rest of the line, run from /.
    const copied = await run('sh', ['-c', fix![1]!], { cwd: '/' });
    expect(copied.code, copied.stderr).toBe(0);
    const after = await doctor(s.env);
    expect(after.stdout).toContain('ok    iPXE binaries present');
  });
});

// A Genesis holding a capability the shell lacks (systemd's AmbientCapabilities for its user, or
// root) hides its sockets' processes from doctor run in that shell: /proc/<pid>/fd needs ptrace
// access. Here: Genesis as root in a network namespace of its own, doctor as root with every
// capability dropped (the same kernel check), and a listener of another user (nobody).
function hiddenMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace, port 69, another user)';
  return commandMissing(['ip', 'setpriv', 'busybox']) ?? netnsMissing();
}
const hiddenSkip = hiddenMissing();
if (hiddenSkip) console.warn(`doctor with hidden processes skipped: ${hiddenSkip}`);

describe.skipIf(hiddenSkip !== undefined)('genesis doctor without the capabilities the running Genesis holds', () => {
  it('names that Genesis as the holder of its ports (the TFTP port it may not bind included) by its serve marker; without the marker, warns that it is likely; another user’s listener fails, named by its user', async () => {
    const ns = `genesis-doctor-${process.pid}`;
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    const s = setup({ assets: true });
    const state = path.join(s.dir, 'state');
    const ports = { GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_HTTP_PORT: '8080', GENESIS_TFTP_HOST: '127.0.0.1', GENESIS_TFTP_PORT: '69', GENESIS_EVENTS_HOST: '127.0.0.1' };
    let g: GenesisProcess | undefined;
    let listener: ChildProcess | undefined;
    try {
      expect(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status).toBe(0);
      g = new GenesisProcess(['serve'], { ...s.env, ...ports, XDG_STATE_HOME: state }, s.dir, ['ip', 'netns', 'exec', ns]);
      await g.ready();
      listener = spawn('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'busybox', 'nc', '-l', '-p', '8092'], { stdio: 'ignore' });
      // Listening (state 0A) on port 8092 (busybox listens on IPv6, dual stack), in the namespace's own tables.
      await until(() => /:1F9C 0+:0000 0A /.test(spawnSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/tcp', '/proc/net/tcp6']).stdout.toString()), 'the listener of nobody on 8092');
      const capless = (state: string) =>
        run('ip', ['netns', 'exec', ns, 'setpriv', '--bounding-set=-all', '--inh-caps=-all', process.execPath, BIN, 'doctor', '--json'], {
          env: { PATH: process.env.PATH, ...s.env, ...ports, GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '8092', XDG_STATE_HOME: state },
        });
      const byId = (stdout: string) => new Map((JSON.parse(stdout) as { results: Array<{ id: string; status: string; title: string; fix?: string }> }).results.map((x) => [x.id, x]));

      const seen = byId((await capless(state)).stdout);
      const pid = g.child.pid!;
      expect(seen.get('port-tcp-8080')).toEqual({ id: 'port-tcp-8080', status: 'ok', title: `TCP 127.0.0.1:8080 (HTTP) is served by the running Genesis (pid ${pid})` });
      expect(seen.get('port-udp-69')).toEqual({ id: 'port-udp-69', status: 'ok', title: `UDP 127.0.0.1:69 (TFTP) is served by the running Genesis (pid ${pid})` });
      expect(seen.get('port-tcp-8092')).toMatchObject({ status: 'fail', title: expect.stringMatching(/^TCP 127\.0\.0\.1:8092 \(kernel-log receiver\) is already in use by a process of (nobody \(uid 65534\)|uid 65534) that this user cannot see$/) });

      // No marker (another state directory than the serve's): the serve is only likely the
      // holder, and it is this user's own (root without its capabilities), so the way to name it
      // is the serve's state directory, not another user.
      const unmarked = byId((await capless(path.join(s.dir, 'no-state'))).stdout);
      expect(unmarked.get('port-tcp-8080')).toMatchObject({
        status: 'warn',
        title: expect.stringMatching(new RegExp(`^TCP 127\\.0\\.0\\.1:8080 \\(HTTP\\) is held by a process of this user \\(root\\) that a capability hides from this shell; this user runs genesis serve \\(pid [\\d, ]*\\b${pid}\\b[\\d, ]*\\), likely the holder$`)),
        fix: 'run genesis doctor with the HOME (or XDG_STATE_HOME) genesis serve runs with, where it records its pid and ports, or as root, to see who holds it',
      });
      expect(unmarked.get('port-udp-69')).toMatchObject({ status: 'warn' });
    } finally {
      listener?.kill();
      g?.kill('SIGTERM');
      await g?.exit();
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });
});
