// Power control against real peers: Wake-on-LAN to a UDP listener on loopback (the packet's
// layout and the address it leaves from), IPMI through ipmitool against OpenIPMI's BMC simulator
// (ipmi_sim, lanplus, a password file), and reboot/reset through the fake Talos apid (mTLS).

import { spawn } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { FakeTalos } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const MAC = '52:54:00:00:50:01';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function genesisLab(env: Record<string, string> = {}, logLines?: string[]): Promise<TestGenesis> {
  const g = await startGenesis({ GENESIS_CLUSTER_NAME: 'lab', GENESIS_BACKUP_ENABLED: 'false', ...env }, { logLines });
  cleanup.push(() => g.close());
  return g;
}

const cli = (g: TestGenesis, args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir, ...env } });

type Events = { events: Array<{ type: string; actor: string; detail: Record<string, unknown> }> };
const powerEvents = async (g: TestGenesis, mac = MAC) => ((await (await g.api('GET', `/nodes/${mac}/events`)).json()) as Events).events.filter((e) => e.type === 'power');

/** A free UDP port on loopback (taken, then released, for a program that needs it in its config). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('Wake-on-LAN', () => {
  it('sends the magic packet from the LAN address to the configured broadcast and port', async () => {
    const listener = createSocket('udp4');
    const got: Array<{ msg: Buffer; rinfo: RemoteInfo }> = [];
    listener.on('message', (msg, rinfo) => got.push({ msg, rinfo }));
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => listener.close());
    // advertise_addr is the LAN interface's address: 127.0.0.2 here, so the source shows it was used.
    const g = await genesisLab({ GENESIS_ADVERTISE_ADDR: '127.0.0.2', GENESIS_POWER_WOL_ADDRESS: '127.0.0.1', GENESIS_POWER_WOL_PORT: String(listener.address().port) });
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' })).status).toBe(201);

    const on = await cli(g, ['nodes', 'power', MAC, 'on']);
    expect(on.stderr).toBe('');
    expect(on.stdout).toBe(`${MAC}  on (wol): magic packet sent to 127.0.0.1:${listener.address().port} from 127.0.0.2\n`);
    await until(() => got.length > 0 || undefined, 'the magic packet');
    const { msg, rinfo } = got[0]!;
    expect(rinfo.address).toBe('127.0.0.2');
    expect(msg.length).toBe(102);
    expect(msg.subarray(0, 6).toString('hex')).toBe('ffffffffffff');
    expect(msg.subarray(6).toString('hex')).toBe('525400005001'.repeat(16));
    expect(await powerEvents(g)).toMatchObject([{ actor: 'api:cli', detail: { action: 'on', method: 'wol' } }]);

    // Wake-on-LAN cannot switch a machine off: a clear refusal, not a silent no-op.
    const off = await g.api('POST', `/nodes/${MAC}/power`, { action: 'off' });
    expect(off.status).toBe(409);
    expect(await off.json()).toEqual({ error: 'power_refused', message: `Wake-on-LAN can only power ${MAC} on; to switch it off, give it an IPMI BMC (power.method ipmi), or use reboot (Talos API)` });
    expect((await g.api('POST', `/nodes/${MAC}/power`, { action: 'dance' })).status).toBe(400);
    expect((await g.api('POST', '/nodes/52:54:00:00:50:99/power', { action: 'on' })).status).toBe(404);
    expect(got).toHaveLength(1);
  });

  it('never wakes a machine marked manual', async () => {
    const listener = createSocket('udp4');
    const got: Buffer[] = [];
    listener.on('message', (msg) => got.push(msg));
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => listener.close());
    const g = await genesisLab({ GENESIS_POWER_WOL_ADDRESS: '127.0.0.1', GENESIS_POWER_WOL_PORT: String(listener.address().port) });
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' })).status).toBe(201);
    const set = await cli(g, ['nodes', 'power-method', MAC, 'manual']);
    expect(set.stdout).toBe(`${MAC}  power=manual\n`);
    const on = await cli(g, ['nodes', 'power', MAC, 'on']);
    expect(on.code).toBe(1);
    expect(on.stderr).toBe(`genesis nodes power: ${MAC} is set to manual power: Genesis never powers it on or off\n`);
    expect(await powerEvents(g)).toMatchObject([{ detail: { action: 'on', method: 'manual', error: expect.stringContaining('manual power') } }]);
    // A packet would have arrived before the CLI's answer came back; a follow-up packet proves the listener works.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => probe.send(Buffer.from('probe'), listener.address().port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    probe.close();
    await until(() => got.length > 0 || undefined, 'the probe');
    expect(got.map((m) => m.toString())).toEqual(['probe']);
  });
});

/** OpenIPMI's BMC simulator on a loopback port, its chassis driven by a script that records every call. */
async function startBmc(password: string): Promise<{ port: number; calls: () => string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bmc-'));
  const port = await freeUdpPort();
  const calls = path.join(dir, 'calls');
  const script = path.join(dir, 'chassis.sh');
  writeFileSync(calls, '');
  writeFileSync(
    script,
    `#!/bin/sh
echo "$*" >> ${calls}
case "$*" in
  *get*) printf 'power:%s\\nboot:default\\n' "$(cat ${dir}/power 2>/dev/null || echo 0)";;
  *"set power 1"*) echo 1 > ${dir}/power;;
  *"set power 0"*) echo 0 > ${dir}/power;;
esac
`,
    { mode: 0o755 },
  );
  writeFileSync(
    path.join(dir, 'lan.conf'),
    `name "genesis-test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${script}"
user 2 true "admin" "${password}" admin 10 none md2 md5 straight
`,
  );
  writeFileSync(path.join(dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
  const sim = spawn('ipmi_sim', ['-c', path.join(dir, 'lan.conf'), '-f', path.join(dir, 'sim.emu'), '-s', path.join(dir, 'state'), '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => sim.kill('SIGKILL'));
  let output = '';
  sim.stdout.on('data', (d) => (output += d));
  sim.stderr.on('data', (d) => (output += d));
  // Ready when ipmitool gets an answer: the simulator prints nothing when its LAN socket is up.
  await until(async () => {
    if (sim.exitCode !== null) throw new Error(`ipmi_sim exited: ${output}`);
    const r = await run('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-E', '-C', '3', '-N', '1', '-R', '1', 'chassis', 'power', 'status'], {
      env: { PATH: process.env.PATH, IPMI_PASSWORD: password },
    });
    return r.code === 0 || undefined;
  }, 'ipmi_sim answering');
  writeFileSync(calls, '');
  return { port, calls: () => readFileSync(calls, 'utf8').split('\n').filter(Boolean) };
}

describe('IPMI', () => {
  it('powers a machine through its BMC with ipmitool; the password stays in its file', async (ctx) => {
    if ((await run('sh', ['-c', 'command -v ipmi_sim && command -v ipmitool'])).code !== 0) ctx.skip('ipmi_sim or ipmitool is not installed (Debian: openipmi, ipmitool)');
    const password = 'bmc-Secret-7f3a9';
    const bmc = await startBmc(password);
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-ipmi-'));
    const passwordFile = path.join(dir, 'bmc.pass');
    writeFileSync(passwordFile, password + '\n', { mode: 0o644 });
    chmodSync(passwordFile, 0o644);
    // A stand-in ipmitool first on PATH records the arguments Genesis passes, then runs the real one.
    const shim = path.join(dir, 'bin');
    const argvLog = path.join(dir, 'argv');
    await run('mkdir', [shim]);
    writeFileSync(path.join(shim, 'ipmitool'), `#!/bin/sh\necho "$*" >> ${argvLog}\nexec /usr/bin/ipmitool "$@"\n`, { mode: 0o755 });
    const savedPath = process.env.PATH;
    process.env.PATH = `${shim}:${savedPath}`;
    cleanup.push(() => (process.env.PATH = savedPath));

    const logLines: string[] = [];
    const g = await genesisLab({ GENESIS_POWER_IPMI_PORT: String(bmc.port) }, logLines);
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' })).status).toBe(201);
    const set = await cli(g, ['nodes', 'power-method', MAC, 'ipmi', '--bmc', '127.0.0.1', '--bmc-user', 'admin', '--bmc-password-file', passwordFile]);
    expect(set.stderr).toBe('');
    expect(set.stdout).toBe(`${MAC}  power=ipmi  bmc=admin@127.0.0.1\n`);

    // A password file others can read is refused before anything is sent.
    const loose = await g.api('POST', `/nodes/${MAC}/power`, { action: 'status' });
    expect(loose.status).toBe(409);
    expect(((await loose.json()) as { message: string }).message).toBe(`BMC password file ${passwordFile} can be read by others (mode 644); chmod 600 it`);
    chmodSync(passwordFile, 0o600);

    expect(await cli(g, ['nodes', 'power', MAC, 'status'])).toMatchObject({ code: 0, stdout: `${MAC}  status (ipmi): Chassis Power is off\npower: off\n` });
    expect(await cli(g, ['nodes', 'power', MAC, 'on'])).toMatchObject({ code: 0, stdout: `${MAC}  on (ipmi): BMC 127.0.0.1: Chassis Power Control: Up/On\n` });
    expect(await cli(g, ['nodes', 'power', MAC, 'pxe'])).toMatchObject({ code: 0, stdout: `${MAC}  pxe (ipmi): BMC 127.0.0.1: Set Boot Device to pxe\n` });
    const status = await g.api('POST', `/nodes/${MAC}/power`, { action: 'status' });
    expect(await status.json()).toMatchObject({ power: 'on', method: 'ipmi' });
    expect(await cli(g, ['nodes', 'power', MAC, 'off'])).toMatchObject({ code: 0, stdout: `${MAC}  off (ipmi): BMC 127.0.0.1: Chassis Power Control: Down/Off\n` });
    // What the BMC's chassis was told, in order.
    expect(bmc.calls().filter((c) => c.startsWith('set'))).toEqual(['set power 1', 'set boot pxe', 'set power 0']);

    // A wrong password is the BMC's refusal, as a 502 with ipmitool's reason.
    writeFileSync(passwordFile, 'not-the-password\n');
    const wrong = await g.api('POST', `/nodes/${MAC}/power`, { action: 'on' });
    expect(wrong.status).toBe(502);
    expect(await wrong.json()).toEqual({ error: 'power_failed', message: 'BMC 127.0.0.1: Error: Unable to establish IPMI v2 / RMCP+ session' });

    // The password went nowhere else: not on ipmitool's command line, the API, the timeline or the log.
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).toContain(`-I lanplus -H 127.0.0.1 -p ${bmc.port} -U admin -E`);
    const node = await (await g.api('GET', `/nodes/${MAC}`)).text();
    expect(JSON.parse(node).power).toEqual({ method: 'ipmi', bmc: { address: '127.0.0.1', username: 'admin', passwordFile } });
    const events = JSON.stringify(await powerEvents(g));
    for (const [where, text] of [['argv', argv], ['node', node], ['events', events], ['log', logLines.join('\n')]] as const) {
      expect(text.includes(password), where).toBe(false);
      expect(text.includes('not-the-password'), where).toBe(false);
    }
    expect(logLines.some((l) => l.includes('"action":"on"') && l.includes('"method":"ipmi"'))).toBe(true);
  });
});

describe('Talos reboot and reset', () => {
  async function talosLab(n: number, members: string[]) {
    const host = `127.0.50.${n}`;
    const talos = await FakeTalos.start({ host, port: 0, bundle, hostname: 'cp-1', etcdMembers: members });
    cleanup.push(() => talos.die());
    const g = await genesisLab({ GENESIS_BOOTSTRAP_TALOS_API_PORT: String(talos.port), GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000', GENESIS_BOOTSTRAP_ENABLED: 'false' });
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'controlplane', hostname: 'cp-1', network: { address: `${host}/8` } })).status).toBe(201);
    expect((await g.api('POST', `/nodes/${MAC}/installed`)).status).toBe(200);
    return { g, talos };
  }

  it('reboot goes through the Talos API with os:admin credentials', async () => {
    const { g, talos } = await talosLab(2, ['cp-1', 'cp-2']);
    const r = await cli(g, ['nodes', 'power', MAC, 'reboot']);
    expect(r).toMatchObject({ code: 0, stdout: `${MAC}  reboot (talos): Talos is rebooting\n` });
    expect(talos.reboots).toEqual([{ mode: 'DEFAULT' }]);
    expect(talos.refusedClients).toBe(0);
    await until(() => !talos.alive || undefined, 'the fake going down');
    // The machine is rebooting: the next call finds no API, and says so.
    const again = await g.api('POST', `/nodes/${MAC}/power`, { action: 'reboot' });
    expect(again.status).toBe(502);
    expect(await powerEvents(g)).toHaveLength(2);
  });

  it('reinstall --reset opens the install window, then Talos wipes its system disk and reboots', async () => {
    const { g, talos } = await talosLab(3, ['cp-1', 'cp-2', 'cp-3']);
    const r = await cli(g, ['nodes', 'reinstall', MAC, '--reset']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${MAC}  role=controlplane  state=reinstall-requested  hostname=cp-1\nTalos is wiping its system disk and rebooting into the install window\n`);
    expect(talos.resets).toEqual([{ graceful: true, reboot: true, mode: 'SYSTEM_DISK', systemPartitionsToWipe: [], userDisksToWipe: [] }]);
    expect(await powerEvents(g)).toMatchObject([{ actor: 'api:cli', detail: { action: 'reinstall', method: 'talos' } }]);
  });

  it('a graceful reset Talos refuses leaves the window open and says how to go on; --force goes through', async () => {
    const { g, talos } = await talosLab(4, ['cp-1']);
    const refused = await cli(g, ['nodes', 'reinstall', MAC, '--reset']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `genesis nodes reinstall: Reset: etcd member is the only member of the cluster, cannot leave gracefully; the install window is open, so a power cycle of ${MAC} reinstalls it\n`,
    );
    expect(((await (await g.api('GET', `/nodes/${MAC}`)).json()) as { state: string }).state).toBe('reinstall-requested');
    expect(talos.resets).toEqual([]);
    const forced = await cli(g, ['nodes', 'reinstall', MAC, '--reset', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(talos.resets).toMatchObject([{ graceful: false, reboot: true, mode: 'SYSTEM_DISK' }]);
    expect((await cli(g, ['nodes', 'reinstall', MAC, '--force'])).stderr).toBe('genesis nodes reinstall: --force goes with --reset\n');
  });

  it('a reinstall with reset of a machine without a role is refused', async () => {
    const g = await genesisLab();
    expect((await g.api('PUT', '/nodes/52:54:00:00:50:02', { role: 'unassigned' })).status).toBe(201);
    const res = await g.api('POST', '/nodes/52:54:00:00:50:02/reinstall', { reset: true });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: string }).error).toBe('power_refused');
  });
});
