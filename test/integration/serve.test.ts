// `genesis serve` as a real process: start-up, configuration errors, TFTP from assets/, shutdown.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { SENDER_NICE } from '../../src/bulk/bulk-sender.ts';
import { LATEST_SCHEMA } from '../../src/inventory/migrations.ts';
import { eventSinkService } from '../../src/talos-events/sink-grpc.ts';
import { encodeAck, encodeRequest } from '../../src/tftp/packet.ts';
import { stageTalosPlaceholders } from '../helpers/genesis-app.ts';
import { SERVE_NODE_FLAGS } from '../../bench/peers.ts';
import { readServeMarker } from '../../src/config/serve-marker.ts';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { until } from '../helpers/wait.ts';
import { RawPeer } from '../helpers/raw-tftp.ts';
import { talosAny } from '../helpers/talos-reporter.ts';
import { threadsNamed } from '../helpers/threads.ts';
import { run, sha256, sha256File } from '../helpers/run.ts';

const running: GenesisProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) if (p.child.exitCode === null) p.kill('SIGKILL');
});

function workdir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-serve-'));
  mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
  stageTalosPlaceholders(path.join(dir, 'assets'));
  return dir;
}

function genesis(cwd: string, env: NodeJS.ProcessEnv = {}, args: string[] = ['serve']): GenesisProcess {
  const p = new GenesisProcess(args, { GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', ...env }, cwd);
  running.push(p);
  return p;
}

describe('genesis serve', () => {
  it('serves assets/ipxe over TFTP and answers /healthz', async () => {
    const dir = workdir();
    const data = randomBytes(200_000);
    writeFileSync(path.join(dir, 'assets', 'ipxe', 'undionly.kpxe'), data);
    const g = genesis(dir);
    const ready = await g.ready();
    expect(ready.tftp?.port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${ready.http.port}/healthz`);
    expect(res.status).toBe(200);
    // Who this Genesis is: another one probing the LAN tells a second Genesis for its cluster by it.
    expect(await res.json()).toEqual({ status: 'ok', genesis: { cluster: 'homelab', instance: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    const dest = path.join(dir, 'got');
    const r = await run('curl', ['-sS', '-o', dest, `tftp://127.0.0.1:${ready.tftp!.port}/undionly.kpxe`]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(dest)).toBe(sha256(data));
    const logged = await g.waitFor((l) => l.msg === 'tftp transfer');
    expect(logged).toMatchObject({ component: 'tftp', file: 'undionly.kpxe', bytes: 200_000, outcome: 'ok' });
    expect(existsSync(path.join(dir, 'data'))).toBe(true);
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a kernel with sendfile from a thread of its own that yields the CPU, with no second process', async () => {
    const dir = workdir();
    const kernel = randomBytes(6 * 1024 * 1024);
    writeFileSync(path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), kernel);
    const g = genesis(dir);
    const ready = await g.ready();
    const res = await fetch(`http://127.0.0.1:${ready.http.port}/assets/talos/v1.14.0/amd64/vmlinuz`);
    expect(res.headers.get('connection')).toBe('close');
    expect(Buffer.from(await res.arrayBuffer()).equals(kernel)).toBe(true);
    expect(spawnSync('pgrep', ['-P', String(g.child.pid), '-f', 'sender-process']).status, 'no sender process').toBe(1);
    const [thread] = threadsNamed('gen-sendfile', g.child.pid!);
    expect(thread, 'the sendfile thread').toBeDefined();
    expect(getPriority(thread)).toBe(Math.min(19, getPriority(g.child.pid!) + SENDER_NICE));
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    expect(g.lines.at(-1)).toMatchObject({ msg: 'genesis stopped' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('with http.sendfile off, sends a kernel through its bulk sender, which yields the CPU and starts from the compile cache', async () => {
    const dir = workdir();
    const kernel = randomBytes(6 * 1024 * 1024);
    writeFileSync(path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), kernel);
    const g = genesis(dir, { GENESIS_HTTP_SENDFILE: 'false' });
    const ready = await g.ready();
    const res = await fetch(`http://127.0.0.1:${ready.http.port}/assets/talos/v1.14.0/amd64/vmlinuz`);
    expect(Buffer.from(await res.arrayBuffer()).equals(kernel)).toBe(true);
    const pgrep = spawnSync('pgrep', ['-P', String(g.child.pid), '-f', 'sender-process'], { encoding: 'utf8' });
    const [sender] = pgrep.stdout.trim().split('\n').filter(Boolean).map(Number);
    expect(sender, 'a sender process under genesis serve').toBeGreaterThan(0);
    expect(getPriority(sender!)).toBe(Math.min(19, getPriority(g.child.pid!) + SENDER_NICE));
    // bin/genesis.js turns Node's compile cache on; the sender gets it too (without, it loads the TypeScript stripper).
    const environ = readFileSync(`/proc/${sender}/environ`, 'utf8').split('\0');
    expect(environ.some((v) => v.startsWith('NODE_COMPILE_CACHE='))).toBe(true);
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops with exit code 0 after its bulk sender has gone, though Node then never reports the HTTP server closed', async () => {
    const dir = workdir();
    writeFileSync(path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), randomBytes(6 * 1024 * 1024));
    const g = genesis(dir, { GENESIS_HTTP_SENDFILE: 'false' });
    const ready = await g.ready();
    const res = await fetch(`http://127.0.0.1:${ready.http.port}/assets/talos/v1.14.0/amd64/vmlinuz`);
    expect((await res.arrayBuffer()).byteLength).toBe(6 * 1024 * 1024);
    const pgrep = spawnSync('pgrep', ['-P', String(g.child.pid), '-f', 'sender-process'], { encoding: 'utf8' });
    const [sender] = pgrep.stdout.trim().split('\n').filter(Boolean).map(Number);
    expect(sender, 'a sender process under genesis serve').toBeGreaterThan(0);
    // Gone as after its quiet minute (or a crash): the connection it was handed is Node's
    // "sent to a child" from then on, and net.Server.close waits for that child forever.
    process.kill(sender!, 'SIGKILL');
    await g.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('bulk sender exited'));
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    expect(g.stderr).not.toMatch(/unsettled top-level await/);
    expect(g.lines.at(-1)).toMatchObject({ msg: 'genesis stopped' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives an HTTP download to a client that stopped reading the grace period, then cuts it and exits 0', async () => {
    const dir = workdir();
    writeFileSync(path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), randomBytes(6 * 1024 * 1024));
    // On the main thread: a download there is one of fastify's requests, which its close waits for.
    const g = genesis(dir, { GENESIS_HTTP_BULK_PROCESS: 'false', GENESIS_SHUTDOWN_GRACE: '1' });
    const ready = await g.ready();
    const client = net.connect(ready.http.port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    client.write('GET /assets/talos/v1.14.0/amd64/vmlinuz HTTP/1.1\r\nHost: genesis\r\n\r\n');
    // Some of the response, then nothing read: the kernel's buffers fill and the server waits on us.
    await once(client, 'readable');
    client.pause();
    const closed = once(client, 'close');
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    expect(g.lines.at(-1)).toMatchObject({ msg: 'genesis stopped' });
    client.resume();
    await closed;
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds no gRPC while no node reports; the first node to report loads it and is answered', async () => {
    const dir = workdir();
    // Says on stderr each time the process resolves gRPC or protobufjs (Node's module hooks).
    const hook = path.join(dir, 'watch-loads.mjs');
    writeFileSync(
      hook,
      `import { registerHooks } from 'node:module';
registerHooks({ resolve(specifier, context, next) { if (/^(@grpc\\/|protobufjs)/.test(specifier)) process.stderr.write('resolved ' + specifier + '\\n'); return next(specifier, context); } });\n`,
    );
    const g = genesis(dir, { NODE_OPTIONS: `--import=${hook}` });
    const ready = (await g.ready()) as unknown as { http: { port: number }; events: { sink: { port: number } } };
    expect((await fetch(`http://127.0.0.1:${ready.http.port}/healthz`)).status).toBe(200);
    expect(g.stderr).not.toMatch(/resolved/);

    // A node's first event over a real gRPC connection: its bytes arrive while the service loads.
    const Client = grpc.makeGenericClientConstructor(eventSinkService(), 'EventSinkService') as unknown as new (
      address: string,
      credentials: grpc.ChannelCredentials,
    ) => grpc.Client & { Publish: (req: object, cb: (err: grpc.ServiceError | null) => void) => void };
    const client = new Client(`127.0.0.1:${ready.events.sink.port}`, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.Publish({ id: 'first', data: talosAny('PhaseEvent', { phase: 'boot', action: 0 }) }, (err) => (err ? reject(err) : resolve())));
    client.close();
    while (!/resolved @grpc\/grpc-js/.test(g.stderr)) await once(g.child.stderr!, 'data');
    // From an address no machine has: answered OK and counted, not stored.
    const metrics = await (await fetch(`http://127.0.0.1:${ready.http.port}/metrics`)).text();
    expect(metrics).toMatch(/genesis_talos_events_total\{[^}]*result="unknown-source"[^}]*\} 1/);
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops on invalid configuration with one clear line and exit code 2', async () => {
    const dir = workdir();
    const g = genesis(dir, { GENESIS_HTTP_PORT: 'eighty' });
    expect(await g.exit()).toBe(2);
    expect(g.stderr.trim()).toBe('genesis: invalid configuration: http.port (GENESIS_HTTP_PORT): must be an integer from 0 to 65535, got "eighty"');
    const bad = genesis(dir, {}, ['serve', '--config', 'nope.yaml']);
    expect(await bad.exit()).toBe(2);
    expect(bad.stderr).toMatch(/^genesis: cannot read configuration file .*nope\.yaml: ENOENT\n$/);
  });

  // An older Node than 24 fails on the first .ts import with a stack trace; the entry point checks
  // first. Debian's own node (20 on these machines) is the older Node at hand.
  const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((n) => existsSync(n) && Number(spawnSync(n, ['-p', 'process.versions.node.split(".")[0]']).stdout?.toString().trim()) < 24);
  it.skipIf(!oldNode)('on a Node older than 24 says so in one line and exits 1, for every command', async () => {
    for (const args of [['serve'], ['doctor'], ['--help']]) {
      const r = await run(oldNode!, [BIN, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^genesis: needs Node 24 or newer, this is Node \d+\.\d+\.\d+ \(.*\)\. Install Node 24 .*\n$/);
      expect(r.stdout).toBe('');
    }
  });

  it('help: genesis help, genesis help <command> and serve --help each print their own usage and exit 0', async () => {
    const top = await run(process.execPath, [BIN, 'help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: genesis <command>/);
    expect(top.stdout).toContain('GENESIS_URL');
    expect(top.stdout).toContain('Examples:');
    const nodes = await run(process.execPath, [BIN, 'help', 'nodes']);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout).toMatch(/^Usage: genesis nodes /);
    const serve = await run(process.execPath, [BIN, 'serve', '--help']);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/^Usage: genesis serve /);
    const unknown = await run(process.execPath, [BIN, 'srve']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^genesis: unknown command "srve"/);
  });

  it('says clearly when a port is taken', async () => {
    const dir = workdir();
    const first = genesis(dir);
    const { http } = await first.ready();
    const second = genesis(dir, { GENESIS_HTTP_PORT: String(http.port) });
    expect(await second.exit()).toBe(2);
    expect(second.stderr).toMatch(/^genesis: cannot listen: .*EADDRINUSE/);
  });

  it('on SIGTERM stops accepting, lets a running transfer finish, and exits 0', async () => {
    const dir = workdir();
    writeFileSync(path.join(dir, 'assets', 'ipxe', 'f.bin'), randomBytes(512 * 5 + 10));
    const g = genesis(dir);
    const { tftp } = await g.ready();
    const peer = await new RawPeer().open();
    peer.send(encodeRequest('rrq', 'f.bin', 'octet'), tftp!.port);
    const first = await peer.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    g.kill('SIGTERM');
    await g.waitFor((l) => l.msg === 'shutting down');
    // The transfer started before the signal goes on to the end, driven by our ACKs.
    let block = 1;
    let port = first.port;
    for (;;) {
      peer.send(encodeAck(block), port);
      const next = await peer.next();
      expect(next.packet.kind).toBe('data');
      if (next.packet.kind !== 'data') break;
      block = next.packet.block;
      port = next.port;
      if (next.packet.data.length < 512) {
        peer.send(encodeAck(block), port);
        break;
      }
    }
    expect(block).toBe(6);
    expect(await g.exit()).toBe(0);
    expect(g.lines.find((l) => l.msg === 'tftp transfer')).toMatchObject({ outcome: 'ok', bytes: 512 * 5 + 10 });
    peer.close();
  });

  it('with its log on a full disk (stdout to /dev/full) serves, and stops on SIGTERM with exit 0', async () => {
    const dir = workdir();
    const state = path.join(dir, 'state');
    const full = openSync('/dev/full', 'w');
    // Readiness from the serve marker (XDG_STATE_HOME): the log, where the ready line goes, takes nothing.
    const child = spawn(process.execPath, [...SERVE_NODE_FLAGS, BIN, 'serve'], {
      cwd: dir,
      env: { PATH: process.env.PATH, XDG_STATE_HOME: state, GENESIS_LOG_FORMAT: 'json', GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0' },
      stdio: ['ignore', full, 'pipe'],
    });
    closeSync(full);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit') as Promise<[number | null]>;
    try {
      const marker = await until(() => readServeMarker({ XDG_STATE_HOME: state }), 'the serve marker');
      expect((await fetch(`${marker.url}/healthz`)).status).toBe(200);
      // A new machine: log lines, each failing to be written.
      const script = await fetch(`${marker.url}/ipxe/node?mac=52:54:00:12:34:56&buildarch=x86_64&platform=efi`);
      expect(script.status).toBe(200);
      expect((await fetch(`${marker.url}/healthz`)).status).toBe(200);
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
      expect(stderr).not.toMatch(/Error|\n\s+at /);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('stops on SIGTERM with exit 0 when the reader of its log has gone (a broken pipe)', async () => {
    const g = genesis(workdir());
    await g.ready();
    // Like `genesis serve | tee log` with tee killed: every line from now on meets EPIPE.
    g.child.stdout!.destroy();
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
  });

  it('stops on SIGTERM with exit 0 when the reader of its log has stopped reading (a full pipe)', async () => {
    const dir = workdir();
    const state = path.join(dir, 'state');
    const exitFile = path.join(dir, 'exit-code');
    // `genesis serve | sleep`: a shell pipe (64 KiB) whose reader never reads; the shell notes Genesis's exit code.
    const shell = spawn('sh', ['-c', '("$0" "$@"; echo $? > "$EXIT_FILE") | sleep 600', process.execPath, ...SERVE_NODE_FLAGS, BIN, 'serve'], {
      cwd: dir,
      detached: true,
      env: { PATH: process.env.PATH, EXIT_FILE: exitFile, XDG_STATE_HOME: state, GENESIS_LOG_FORMAT: 'json', GENESIS_LOG_LEVEL: 'debug', GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_HOST: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const marker = await until(() => readServeMarker({ XDG_STATE_HOME: state }), 'the serve marker');
      // Far more log than the pipe holds (about 250 bytes a request at debug).
      for (let i = 0; i < 1500; i++) {
        const mac = `52:54:00:cc:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        await (await fetch(`${marker.url}/ipxe/node?mac=${mac}&buildarch=x86_64&platform=efi`)).text();
      }
      expect((await fetch(`${marker.url}/healthz`)).status).toBe(200);
      process.kill(marker.pid, 'SIGTERM');
      expect(await until(() => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim(), 'Genesis to exit')).toBe('0');
    } finally {
      try {
        process.kill(-shell.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  });

  it('starts with no configuration at all: defaults, HTTP 8080, TFTP 69, ./data', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip(); // port 69 needs root or CAP_NET_BIND_SERVICE
    const dir = workdir();
    const g = new GenesisProcess(['serve'], {}, dir);
    running.push(g);
    const ready = await g.ready();
    expect(ready).toMatchObject({ http: { port: 8080 }, tftp: { port: 69 } });
    expect(existsSync(path.join(dir, 'data'))).toBe(true);
    g.kill('SIGINT');
    expect(await g.exit()).toBe(0);
  });
});

describe('genesis serve: API token and inventory', () => {
  it('a generated API token goes to a 0600 file, never to the log; only a terminal is shown it', async () => {
    const dir = workdir();
    const g = genesis(dir);
    const ready = await g.ready();
    g.kill('SIGTERM');
    expect(await g.exit()).toBe(0);
    const token = readFileSync(path.join(dir, 'data', 'admin.token'), 'utf8').trim();
    expect(token).toMatch(/^gns_[A-Za-z0-9_-]{43}$/);
    // stderr is no terminal here (as under Docker or systemd): it says where the token is, not what.
    expect(g.stderr).not.toContain(token);
    expect(g.stderr).toContain('Read it with: genesis token show');
    expect(JSON.stringify(g.lines)).not.toContain(token);
    expect(ready).toMatchObject({ apiToken: 'generated' });

    // On a terminal (util-linux `script` runs it on a pseudo-terminal) the operator sees it once.
    const tty = workdir();
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} serve`, '/dev/null'], {
      cwd: tty,
      detached: true,
      env: { PATH: process.env.PATH, GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0', GENESIS_LOG_FORMAT: 'json' },
    });
    let screen = '';
    const shownToken = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        screen += d.toString();
        const m = /\n {2}(gns_[A-Za-z0-9_-]{43})\r?\n/.exec(screen);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`genesis on a terminal printed no token: ${screen}`)));
    });
    process.kill(-child.pid!, 'SIGTERM');
    await once(child, 'exit');
    expect(shownToken).toBe(readFileSync(path.join(tty, 'data', 'admin.token'), 'utf8').trim());
    rmSync(tty, { recursive: true, force: true });

    const again = genesis(dir);
    const port = (await again.ready()).http.port;
    expect(again.stderr).not.toContain('gns_');
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    again.kill('SIGTERM');
    expect(await again.exit()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a database written by a newer Genesis with one line and exit 2', async () => {
    const dir = workdir();
    const first = genesis(dir);
    await first.ready();
    first.kill('SIGTERM');
    await first.exit();
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path.join(dir, 'data', 'genesis.db'));
    db.pragma('user_version = 99');
    db.close();
    const g = genesis(dir);
    expect(await g.exit()).toBe(2);
    expect(g.stderr).toMatch(
      new RegExp(`^genesis: inventory .*genesis\\.db has schema version 99, newer than this Genesis knows \\(${LATEST_SCHEMA}\\); run a newer Genesis or restore a backup\n$`),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('two Genesis processes sharing one data dir: 20 simultaneous first boots, exactly 3 control planes', async () => {
    const dir = workdir();
    const env = { GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_API_TOKEN: 'shared-token-0123456789', GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443' };
    const a = genesis(dir, env);
    const pa = (await a.ready()).http.port;
    const b = genesis(dir, env);
    const pb = (await b.ready()).http.port;
    const macs = Array.from({ length: 20 }, (_, i) => `52:54:03:00:00:${String(i).padStart(2, '0')}`);
    const scripts = await Promise.all(
      macs.map((mac, i) => fetch(`http://127.0.0.1:${i % 2 ? pa : pb}/ipxe/node?mac=${mac}&buildarch=x86_64&platform=efi`).then((r) => r.text())),
    );
    expect(scripts.filter((s) => s.includes(' as controlplane\n'))).toHaveLength(3);
    const list = await fetch(`http://127.0.0.1:${pa}/api/v1/nodes?role=controlplane`, { headers: { authorization: `Bearer ${env.GENESIS_API_TOKEN}` } });
    expect(((await list.json()) as { nodes: unknown[] }).nodes).toHaveLength(3);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect([await a.exit(), await b.exit()]).toEqual([0, 0]);
    rmSync(dir, { recursive: true, force: true });
  });
});
