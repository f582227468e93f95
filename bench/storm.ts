// A boot storm: N machines boot at once through Genesis, end to end (TFTP undionly.kpxe,
// boot.ipxe, the per-node script, a 10 MiB kernel and 20 MiB initramfs, the machine config),
// each from its own 127.0.x.y, simulated by storm-machines.ts (or, with --sim, by the shared
// kit's bootsim.py, to compare the two simulators). Machines are auto-assigned so every one gets
// an install script and its config.
//
//   node bench/storm.ts [--n 200] [--repo <another checkout>] [--peer] [--sim ../shared/bench/bootsim.py] [--after 300]
//
// Prints the simulation's JSON line (wall time, per-step p50/p95, server CPU and peak RSS) with the
// listen-queue overflows the kernel counted during the run (`nstat`, from iproute2).
// With --peer, the same storm then runs against the static stack in the same run: nginx
// (sendfile) serving the same files, with boot.ipxe, every machine's script and config
// pre-rendered by this Genesis, and dnsmasq's TFTP on 127.0.0.69:69 (root; Debian's nginx and
// dnsmasq-base), and the ratios Genesis ÷ peer are printed. Loopback only; the simulation stops at
// its own timeout. With --after <seconds>, Genesis stays up that long after its storm, idle, and
// its memory (with its children) is printed every 30 s: what a host gets back once the storm is
// over (V8 collects an idle heap on its own schedule, the bulk sender leaves after a quiet minute).
// During each storm, boot-probe.ts asks for boot.ipxe every 20 ms from a process of its own: the
// latency of a small request as the server gives it, without the simulator's own delay in it.
// A second prober asks an idle reference server (peers.ts) the same way meanwhile: what any
// server on this machine would answer in that storm, so the first prober's figure can be read
// as the server's own wait or as the machine's.
// After Genesis's storm, its own timing of boot.ipxe and the install script is read from its
// request-duration histogram (server-latency.ts): routing to last byte, without the accept queue;
// and how late its event loop ran during the storm, at worst: the longest the main thread held
// every other request.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BENCH_TOKEN, startGenesis, startNginx, startReferenceServer } from './peers.ts';
import { eventLoopDelay, latencyText, scrape, serverLatencies, type ServerLatency } from './server-latency.ts';
import { rssKiB, withChildren } from './proc.ts';
import { recordFigures } from './results.ts';
import { macOf, runStorm, type StormResult } from './storm-machines.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, repo: { type: 'string' }, sim: { type: 'string' }, peer: { type: 'boolean' }, after: { type: 'string' } } });
const here = path.join(import.meta.dirname, '..');
/** The shared kit's simulator, when asked for; storm-machines.ts otherwise. */
const sim = values.sim ? path.resolve(values.sim) : undefined;
const N = values.n ?? '200';
const KERNEL = 10 * 1024 * 1024;
const INITRD = 20 * 1024 * 1024;

const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bench-storm-'));
chmodSync(dir, 0o755);
const talos = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
mkdirSync(talos, { recursive: true });
mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
writeFileSync(path.join(talos, 'vmlinuz'), Buffer.alloc(KERNEL, 1));
writeFileSync(path.join(talos, 'initramfs.xz'), Buffer.alloc(INITRD, 2));
const kpxe = path.join(dir, 'assets', 'ipxe', 'undionly.kpxe');
writeFileSync(kpxe, Buffer.alloc(70 * 1024, 3));

// Genesis runs from its own copy of node, which it and its bulk sender alone map: their Pss then
// splits node's pages between the two of them only, not with this bench's node processes too.
const node = path.join(dir, 'node');
copyFileSync(process.execPath, node);
chmodSync(node, 0o755);
const genesis = await startGenesis(
  path.resolve(values.repo ?? here),
  dir,
  {
    GENESIS_AUTO_ASSIGN_ENABLED: 'true',
    GENESIS_TFTP_HOST: '127.0.0.1',
  },
  node,
);
/** What a simulation measured; bootsim.py prints the same fields as storm-machines.ts returns. */
type SimResult = StormResult & { listen_overflows?: number; probe_bootipxe?: ProbeResult; reference_probe_bootipxe?: ProbeResult };
/** What boot-probe.ts prints. */
type ProbeResult = { n: number; failed: number; skipped: number; p50_ms: number | null; p95_ms: number | null; p99_ms: number | null; max_ms: number | null };
type Endpoint = { host: string; port: number };

/** The kernel's count of connections dropped for a full listen queue (nstat, iproute2); undefined without nstat. */
function listenOverflows(): number | undefined {
  const r = spawnSync('nstat', ['-az', 'TcpExtListenOverflows'], { encoding: 'utf8' });
  const m = /TcpExtListenOverflows\s+(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** A simulated storm's figures, with the listen-queue overflows and the prober's readings during the run added. */
async function simulate(http: Endpoint, tftp: Endpoint, watch: number[], macPrefix: string): Promise<SimResult> {
  const before = listenOverflows();
  const probe = startProbe(http);
  const referenceProbe = startProbe({ host: '127.0.0.1', port: REFERENCE_PORT }, '127.0.9.10');
  let result: SimResult;
  try {
    result = sim
      ? await runSim(sim, http, tftp, watch, macPrefix)
      : await runStorm({ n: Number(N), http, tftp, kpxe: readFileSync(kpxe), kernelSize: KERNEL, initrdSize: INITRD, watch, macPrefix });
  } finally {
    probe.stop();
    referenceProbe.stop();
  }
  result = { ...result, probe_bootipxe: await probe.result, reference_probe_bootipxe: await referenceProbe.result };
  const after = listenOverflows();
  return before === undefined || after === undefined ? result : { ...result, listen_overflows: after - before };
}

/**
 * boot-probe.ts in its own process for the length of a storm: GET /boot.ipxe every 20 ms, timed
 * by a process that does nothing else, so the simulator's own busy event loop is not in its figures.
 */
function startProbe(http: Endpoint, src = '127.0.9.9'): { stop(): void; result: Promise<ProbeResult> } {
  const c = spawn(process.execPath, [path.join(import.meta.dirname, 'boot-probe.ts'), '--host', http.host, '--port', String(http.port), '--src', src, '--every', '20', '--max-seconds', '180', ...(process.env.BENCH_PROBE_DETAIL ? ['--detail'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  c.stdout.on('data', (d: Buffer) => (text += d.toString()));
  const result = new Promise<ProbeResult>((resolve, reject) => c.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as ProbeResult) : reject(new Error(`boot-probe exited ${code}: ${text}`)))));
  return { stop: () => c.kill('SIGTERM'), result };
}

function probeText(p: ProbeResult | undefined): string {
  return p ? `${p.p50_ms} / ${p.p95_ms} / ${p.p99_ms} ms (${p.n} requests)` : 'no reading';
}

/** The shared kit's simulator, for comparison: its one JSON line. */
function runSim(sim: string, http: Endpoint, tftp: Endpoint, watch: number[], macPrefix: string): Promise<StormResult> {
  const at = (e: Endpoint) => `${e.host}:${e.port}`;
  const args = [sim, '--n', N, '--http', at(http), '--tftp', at(tftp), '--kpxe', kpxe, '--kernel-size', String(KERNEL), '--initrd-size', String(INITRD), '--watch', watch.join(','), '--mac-prefix', macPrefix];
  return new Promise((resolve, reject) => {
    const c = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as StormResult) : reject(new Error(`bootsim exited ${code}: ${text}`))));
  });
}

/** Genesis's resident memory with its children, every 30 s for `seconds` while it idles; the last reading, in MB. */
async function idleAfterStorm(pid: number, seconds: number): Promise<number> {
  const mb = () => withChildren([pid]).reduce((sum, p) => sum + rssKiB(p), 0) / 1024;
  const readings = [`+0 s ${mb().toFixed(0)}`];
  for (let t = 30; t <= seconds; t += 30) {
    await sleep(30_000);
    readings.push(`+${t} s ${mb().toFixed(0)}`);
  }
  console.log(`after the storm, idle: RSS with children (MB) ${readings.join(', ')}`);
  return mb();
}

let afterStormMb: number | undefined;
let genesisResult: SimResult | undefined;
let peerResult: SimResult | undefined;
let serverBootIpxe: ServerLatency | undefined;
const PEER_PORT = 18081;
const REFERENCE_PORT = 18082;
const peerPrefix = '52-54-02';
// Idle through both storms; only the second prober asks it anything.
const reference = await startReferenceServer(REFERENCE_PORT, '#!ipxe\nchain http://127.0.0.1/ipxe/node?mac=${net0/mac}\n');
try {
  // One kernel download first: Genesis starts its bulk sender process on the first large download,
  // and bootsim.py watches only the processes (and their children) that exist when it starts
  // (storm-machines.ts looks again at each sample): so both count the sender's CPU and memory
  // with Genesis's, and both storms start with the sender running.
  await fetch(`http://127.0.0.1:${genesis.port}/assets/talos/v1.14.0/amd64/vmlinuz`).then((r) => r.arrayBuffer());
  // A scrape restarts the event-loop delay readings: the one after the storm reads the storm alone.
  await scrape(`http://127.0.0.1:${genesis.port}`);
  genesisResult = await simulate({ host: '127.0.0.1', port: genesis.port }, { host: '127.0.0.1', port: genesis.tftpPort! }, [genesis.pid], '52-54-01');
  console.log(`genesis: ${JSON.stringify(genesisResult)}`);
  console.log(`boot.ipxe from an idle reference server during genesis's storm, p50 / p95 / p99: ${probeText(genesisResult.reference_probe_bootipxe)}`);
  // Genesis's own timing of the same requests (the machines' and the prober's), routing to last byte.
  const metrics = await scrape(`http://127.0.0.1:${genesis.port}`);
  const latencies = serverLatencies(metrics, ['/boot.ipxe', '/ipxe/node']);
  for (const l of latencies) console.log(`genesis's own timing of ${l.route} (${l.n} requests, its request-duration histogram): ${latencyText(l)}`);
  const delay = eventLoopDelay(metrics);
  if (delay) console.log(`genesis's event loop during the storm, late by: p99 ${delay.p99Ms.toFixed(0)} ms, longest ${delay.maxMs.toFixed(0)} ms (the longest the main thread held every other request)`);
  serverBootIpxe = latencies[0];
  if (values.after) afterStormMb = await idleAfterStorm(genesis.pid, Number(values.after));
  if (values.peer) await prerender();
} finally {
  await genesis.stop();
}

if (values.peer) {
  // The static stack: what Genesis rendered, served by nginx; TFTP by dnsmasq.
  const nginx = await startNginx(dir, PEER_PORT, path.join(dir, 'static'));
  const dnsmasq = spawn('dnsmasq', ['-k', '--port=0', '--enable-tftp', `--tftp-root=${path.join(dir, 'assets', 'ipxe')}`, '--listen-address=127.0.0.69', '--bind-interfaces', '--conf-file=/dev/null', '--quiet-tftp', '--tftp-max=1000', '--pid-file=', '--user=root'], { stdio: 'inherit' });
  try {
    // The simulation adds each watched process's children (nginx's workers) itself.
    const peer = await simulate({ host: '127.0.0.1', port: PEER_PORT }, { host: '127.0.0.69', port: 69 }, [nginx.pid, dnsmasq.pid!], peerPrefix);
    console.log(`peer (dnsmasq + nginx): ${JSON.stringify(peer)}`);
    console.log(`boot.ipxe from an idle reference server during the peer's storm, p50 / p95 / p99: ${probeText(peer.reference_probe_bootipxe)}`);
    peerResult = peer;
    const g = genesisResult!;
    console.log(
      `ratio genesis/peer: wall ${(g.wall_ms / peer.wall_ms).toFixed(2)}, server CPU ${(g.server_cpu_s / peer.server_cpu_s).toFixed(2)}, peak RSS ${g.server_peak_rss_kb && peer.server_peak_rss_kb ? (g.server_peak_rss_kb / peer.server_peak_rss_kb).toFixed(1) : '?'}; ok ${g.ok} vs ${peer.ok} of ${N}`,
    );
    const gp = g.probe_bootipxe;
    const pp = peer.probe_bootipxe;
    if (gp && pp) console.log(`boot.ipxe from a quiet prober during the storm, p50 / p95 / p99: genesis ${probeText(gp)}, peer ${probeText(pp)}`);
  } finally {
    dnsmasq.kill('SIGTERM');
    await nginx.stop();
  }
}
await reference.stop();
rmSync(dir, { recursive: true, force: true });
if (genesisResult) {
  const g = genesisResult;
  recordFigures(`storm-${N}`, {
    machines: Number(N),
    done: g.ok,
    wall_ms: g.wall_ms,
    wall_ratio: peerResult ? g.wall_ms / peerResult.wall_ms : undefined,
    peak_rss_mb: g.server_peak_rss_kb ? g.server_peak_rss_kb / 1024 : undefined,
    pss_at_peak_mb: g.server_pss_at_peak_kb ? g.server_pss_at_peak_kb / 1024 : undefined,
    after_storm_mb: afterStormMb,
    listen_overflows: g.listen_overflows,
    bootipxe_p95_ms: g.steps.bootipxe.p95_ms ?? undefined,
    peer_bootipxe_p95_ms: peerResult?.steps.bootipxe.p95_ms ?? undefined,
    probe_bootipxe_p95_ms: g.probe_bootipxe?.p95_ms ?? undefined,
    peer_probe_bootipxe_p95_ms: peerResult?.probe_bootipxe?.p95_ms ?? undefined,
    probe_bootipxe_p99_ms: g.probe_bootipxe?.p99_ms ?? undefined,
    server_bootipxe_p95_ms: serverBootIpxe?.quantiles.find((b) => b.q === 0.95)?.ms,
    peer_probe_bootipxe_p99_ms: peerResult?.probe_bootipxe?.p99_ms ?? undefined,
    reference_probe_bootipxe_p95_ms: g.reference_probe_bootipxe?.p95_ms ?? undefined,
    reference_probe_bootipxe_p99_ms: g.reference_probe_bootipxe?.p99_ms ?? undefined,
    client_loop_delay_p95_ms: g.client_loop_delay_p95_ms,
    peer_client_loop_delay_p95_ms: peerResult?.client_loop_delay_p95_ms,
  });
}

/**
 * What the static stack serves, rendered by this Genesis: boot.ipxe, and for each of the peer's
 * MACs its install script and its machine config, with Genesis's address replaced by nginx's.
 */
async function prerender(): Promise<void> {
  const base = `http://127.0.0.1:${genesis.port}`;
  const peerBase = `http://127.0.0.1:${PEER_PORT}`;
  const staticDir = path.join(dir, 'static');
  mkdirSync(path.join(staticDir, 'ipxe-node'), { recursive: true });
  writeFileSync(path.join(staticDir, 'boot.ipxe'), (await (await fetch(`${base}/boot.ipxe`)).text()).replaceAll(base, peerBase));
  for (let i = 0; i < Number(N); i++) {
    const mac = macOf(peerPrefix, i);
    // Registered through the API first: a burst of new machines from one address is throttled.
    await fetch(`${base}/api/v1/nodes/${mac.replaceAll('-', ':')}`, { method: 'PUT', headers: { authorization: `Bearer ${BENCH_TOKEN}`, 'content-type': 'application/json' }, body: '{"role":"worker"}' });
    const script = await (await fetch(`${base}/ipxe/node?mac=${mac}&buildarch=i386&platform=pcbios`)).text();
    const configUrl = / talos\.config=(\S+)/.exec(script)?.[1];
    if (!configUrl) throw new Error(`no install script for ${mac}: ${script.slice(0, 200)}`);
    const config = await (await fetch(configUrl)).text();
    const configPath = path.join(staticDir, new URL(configUrl).pathname);
    mkdirSync(path.dirname(configPath), { recursive: true });
    writeFileSync(configPath, config);
    writeFileSync(path.join(staticDir, 'ipxe-node', `${mac}.ipxe`), script.replaceAll(base, peerBase));
  }
}
