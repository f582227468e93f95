// deploy/systemd/genesis.service, for a host without Docker: systemd's own parser accepts it
// (systemd-analyze verify, and its security review), its command and settings are Genesis's, and
// Genesis runs under the unit's privileges. There is no systemd running here (no PID 1 of its own
// in this machine), so the last part applies the unit's User, capabilities, NoNewPrivileges and
// UMask with setpriv, as systemd would, in a network namespace of the test's own.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVE_NODE_FLAGS } from '../../bench/peers.ts';
import { unknownEnvSettings } from '../../src/config/config.ts';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { commandMissing, hasCommand, netnsMissing } from '../helpers/host-tools.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const UNIT = path.join(ROOT, 'deploy', 'systemd', 'genesis.service');
const unitText = readFileSync(UNIT, 'utf8');

/** The unit's [Service] settings, in order (a key may repeat: Environment). */
function serviceSettings(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service') out.push([line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  }
  return out;
}
const settings = serviceSettings(unitText);
const setting = (key: string) => settings.find(([k]) => k === key)?.[1];
const environment = Object.fromEntries(settings.filter(([k]) => k === 'Environment').map(([, v]) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));

/** The unit with its install paths pointed at this checkout and this Node, as `systemctl edit` would. */
const localUnit = (dir: string) => {
  const file = path.join(dir, 'genesis.service');
  writeFileSync(file, unitText.replaceAll('/usr/bin/node', process.execPath).replaceAll('/opt/genesis', ROOT));
  return file;
};

describe('deploy/systemd/genesis.service', () => {
  it("runs npm start's command, with settings Genesis knows, as an unprivileged user holding only CAP_NET_BIND_SERVICE", () => {
    expect(setting('ExecStart')).toBe(`/usr/bin/node ${SERVE_NODE_FLAGS.join(' ')} /opt/genesis/bin/genesis.js serve`);
    expect(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start).toBe(`node ${SERVE_NODE_FLAGS.join(' ')} bin/genesis.js serve`);
    expect(unknownEnvSettings(environment)).toEqual([]);
    expect(setting('User')).toBe('genesis');
    expect(setting('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE');
    expect(setting('CapabilityBoundingSet')).toBe('CAP_NET_BIND_SERVICE');
    expect(setting('NoNewPrivileges')).toBe('yes');
    expect(setting('Restart')).toBe('on-failure');
    // The data dir lies in the state directory systemd creates for the user.
    expect(environment.GENESIS_DATA_DIR).toBe(`/var/lib/${setting('StateDirectory')}/data`);
  });

  const analyze = hasCommand('systemd-analyze');
  if (!analyze) console.warn("the unit's systemd-analyze review skipped: no systemd-analyze (Debian's systemd)");
  it.skipIf(!analyze)("systemd's parser accepts it without a word, and its security review rates it OK", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-unit-'));
    const file = localUnit(dir);
    const verify = await run('systemd-analyze', ['verify', file]);
    // An unknown key or a bad value is only a warning to verify (exit 0): any output fails here.
    expect({ code: verify.code, out: verify.stdout + verify.stderr }).toEqual({ code: 0, out: '' });
    const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', file]);
    const level = /Overall exposure level for genesis\.service: (\d+\.\d+) (\w+)/.exec(security.stdout + security.stderr);
    expect(level?.[2]).toBe('OK');
    expect(Number(level?.[1])).toBeLessThanOrEqual(2.5);
  });
});

// Genesis under the unit's privileges: a test user (nobody), its home, the unit's environment with
// the directories in a temporary root, the proxyDHCP on.
function privilegesMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace, another user)';
  const tool = commandMissing(['ip', 'setpriv', 'curl']);
  if (tool) return tool;
  // The checkout must be readable by the test user (it is not under a private home directory).
  if (spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', `test -r ${BIN} && test -r ${path.join(ROOT, 'node_modules', 'better-sqlite3', 'package.json')}`]).status !== 0) {
    return `the checkout (${ROOT}) is not readable by user nobody`;
  }
  return netnsMissing();
}
const skip = privilegesMissing();
if (skip) console.warn(`Genesis under the systemd unit's privileges skipped: ${skip}`);

describe.skipIf(skip !== undefined)("Genesis under the systemd unit's privileges", () => {
  const ns = `genesis-unit-${process.pid}`;
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });

  it('binds 67, 69 and 4011 as user nobody with only the capability; its files are the user’s alone; doctor run by that user from a shell names it as holder of every port; SIGTERM stops it', async () => {
    const top = mkdtempSync(path.join(tmpdir(), 'genesis-unit-run-'));
    chmodSync(top, 0o755);
    // The user's node: the test's Node lives under root's home, which nobody cannot enter.
    const bin = path.join(top, 'bin');
    mkdirSync(bin);
    copyFileSync(process.execPath, path.join(bin, 'node'));
    chmodSync(path.join(bin, 'node'), 0o755);
    // The unit's directories, moved under `top`: /var/lib/genesis (the user's home and state),
    // /var/cache/genesis, the assets (iPXE binaries read-only, talos/ writable), /etc/genesis.
    const at = (p: string) => path.join(top, p);
    const map = (v: string) => v.replace('/var/lib/genesis', at('state')).replace('/var/cache/genesis', at('cache')).replace('/opt/genesis', at('opt'));
    mkdirSync(at('opt/assets/talos'), { recursive: true });
    cpSync(path.join(ROOT, 'assets', 'ipxe'), at('opt/assets/ipxe'), { recursive: true });
    mkdirSync(at('etc'));
    writeFileSync(at('etc/genesis.yaml'), 'advertise_addr: 192.0.2.1\ncluster:\n  endpoint: https://192.0.2.10:6443\ndhcp:\n  proxy: true\n');
    for (const d of ['state', 'cache', 'opt/assets/talos']) {
      mkdirSync(at(d), { recursive: true });
      chownSync(at(d), 65534, 65534);
    }
    chmodSync(at('state'), 0o700);

    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      // The LAN: a veth pair with both ends in the namespace (this kernel has no dummy links).
      ['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1'],
      ['addr', 'add', '192.0.2.1/24', 'dev', 'lan0'],
      ['link', 'set', 'lan0', 'up'],
      ['link', 'set', 'lan1', 'up'],
    ]) {
      expect(spawnSync('ip', ['-n', ns, ...args]).status).toBe(0);
    }

    const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: at('state'), ...Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, map(v)])) };
    const caps = setting('AmbientCapabilities')!.toLowerCase().replace('cap_', '');
    // What systemd does for User=, AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges= and UMask=.
    const asUnit = ['ip', 'netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=+${caps}`, `--ambient-caps=+${caps}`, `--bounding-set=-all,+${caps}`, ...(setting('NoNewPrivileges') === 'yes' ? ['--no-new-privs'] : [])];
    // npm start's flags, which the first test holds equal to ExecStart's; the events ports at
    // their defaults (the helper turns them off otherwise).
    const g = new GenesisProcess(['serve'], { ...env, GENESIS_EVENTS_SINK_PORT: '8090', GENESIS_EVENTS_KERNEL_LOG_PORT: '8092' }, at('etc'), [...asUnit, 'sh', '-c', `umask ${setting('UMask')} && exec "$@"`, 'sh'], path.join(bin, 'node'));
    try {
      const ready = await g.ready();
      expect(ready).toMatchObject({ http: { port: 8080 }, tftp: { port: 69 }, dhcp: { port: 67, pxePort: 4011 } });

      // A real client fetches an iPXE binary over TFTP from port 69.
      const tftp = await run('ip', ['netns', 'exec', ns, 'curl', '-sS', '-o', '/dev/null', '-w', '%{size_download}', 'tftp://192.0.2.1/undionly.kpxe']);
      expect(tftp.stdout).toBe(String(statSync(at('opt/assets/ipxe/undionly.kpxe')).size));

      // Every file it wrote is the user's alone (UMask=0077, StateDirectoryMode=0700).
      const data = at('state/data');
      for (const f of readdirSync(data, { recursive: true }) as string[]) {
        const st = statSync(path.join(data, f));
        expect({ f, uid: st.uid, other: st.mode & 0o077 }).toEqual({ f, uid: 65534, other: 0 });
      }

      // The operator, as that user from a shell (sudo -u genesis -H genesis doctor): no capability.
      const doctor = await run('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', path.join(bin, 'node'), BIN, 'doctor', '--json'], { cwd: at('etc'), env: { PATH: env.PATH, HOME: at('state') } });
      const ports = (JSON.parse(doctor.stdout) as { results: Array<{ id: string; status: string; title: string }> }).results.filter((r) => r.id.startsWith('port-'));
      expect(ports.map((p) => p.id).sort()).toEqual(['port-tcp-8080', 'port-tcp-8090', 'port-tcp-8092', 'port-udp-4011', 'port-udp-67', 'port-udp-69']);
      for (const p of ports) expect(p).toMatchObject({ status: 'ok', title: expect.stringContaining(`served by the running Genesis (pid ${g.child.pid})`) });
    } finally {
      g.kill('SIGTERM');
    }
    expect(await g.exit()).toBe(0);
  });
});
