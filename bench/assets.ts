// Asset throughput: one 100 MiB file to 1, 10 and 50 concurrent curl clients, from Genesis and from
// nginx (sendfile) serving the same file in the same run, and the latency of GET /boot.ipxe while
// 50 downloads run. Prints GB/s per peer and the ratio Genesis/nginx, which is what to read.
// During Genesis's downloads the same bytes are also asked, turn about, of an idle reference
// server (peers.ts): its p99 is the machine's floor under that load, which no server beats here.
//
//   node bench/assets.ts [--size-mib 100] [--rounds 2] [--repo <another checkout>]
//
// Needs nginx and curl. Loopback only; every download is bounded by its size.

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Running, startGenesis, startNginx, startReferenceServer } from './peers.ts';
import { recordFigures } from './results.ts';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string' }, rounds: { type: 'string' }, repo: { type: 'string' } } });
const SIZE = Number(values['size-mib'] ?? 100) * 1024 * 1024;
const ROUNDS = Number(values.rounds ?? 2);
const NGINX_PORT = 18090;
const REFERENCE_PORT = 18091;

const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bench-assets-'));
// nginx's workers run as an unprivileged user when started as root: let them read the files.
chmodSync(dir, 0o755);
const talos = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
mkdirSync(talos, { recursive: true });
mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
writeFileSync(path.join(talos, 'vmlinuz'), Buffer.alloc(1024, 1));
writeFileSync(path.join(talos, 'initramfs.xz'), Buffer.alloc(SIZE, 7));
const FILE = '/assets/talos/v1.14.0/amd64/initramfs.xz';

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // 'close', not 'exit': exit can come before stdout has been read to the end.
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}`))));
  });
}

/** GB/s for `clients` simultaneous whole-file downloads. */
async function throughput(port: number, clients: number): Promise<number> {
  const t0 = performance.now();
  const sizes = await Promise.all(Array.from({ length: clients }, () => curl(['-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${port}${FILE}`])));
  const s = (performance.now() - t0) / 1000;
  for (const n of sizes) if (Number(n) !== SIZE) throw new Error(`short download: ${n} of ${SIZE}`);
  return (clients * SIZE) / s / 1e9;
}

type Latency = { p50: number; p99: number };

/**
 * p50/p99 of GET `small` (ms), sequential, while 50 downloads from the same server run; with
 * `alongside`, each request is followed by one to that server, timed apart.
 */
async function latencyUnderLoad(port: number, small: string, alongside?: { port: number; path: string }): Promise<{ server: Latency; alongside?: Latency }> {
  const downloads = Promise.all(Array.from({ length: 50 }, () => curl(['-o', '/dev/null', `http://127.0.0.1:${port}${FILE}`])));
  let done = false;
  void downloads.then(() => (done = true));
  const times: number[] = [];
  const other: number[] = [];
  const timed = async (url: string, into: number[]) => {
    const t0 = performance.now();
    await (await fetch(url)).text();
    into.push(performance.now() - t0);
  };
  while (!done && times.length < 5000) {
    await timed(`http://127.0.0.1:${port}${small}`, times);
    if (alongside) await timed(`http://127.0.0.1:${alongside.port}${alongside.path}`, other);
  }
  await downloads;
  return { server: percentiles(times), ...(alongside ? { alongside: percentiles(other) } : {}) };
}

function percentiles(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length * 0.5)]!, p99: sorted[Math.floor(sorted.length * 0.99)]! };
}

/** `clients` downloads from nginx, then from Genesis, printed under `label`; Genesis's ratio to nginx. */
async function compare(label: string, clients: number): Promise<number> {
  const n = await throughput(nginx.port, clients);
  const g = await throughput(genesis.port, clients);
  console.log(`${label}: ${clients} client(s): genesis ${g.toFixed(2)} GB/s, nginx ${n.toFixed(2)} GB/s, ratio ${(g / n).toFixed(2)}`);
  return g / n;
}

const genesis = await startGenesis(path.resolve(values.repo ?? path.join(import.meta.dirname, '..')), dir);
const nginx = await startNginx(dir, NGINX_PORT);
let reference: Running | undefined;
try {
  // One download first, printed but not counted: Genesis starts its bulk sender at the first large
  // download (a process start, 0.1–0.2 s; it leaves after a quiet minute), which a storm pays
  // once, in its first second. 100 MiB to one client is about 40 ms of bytes, so the start
  // weighed on round 1's one-client figure: 0.23–0.56× nginx without this download, 0.48–0.94×
  // with it (docs/performance.md). Only one client, so the rounds still start with the file on
  // disk, not yet held in the sender's memory (which 8 downloads of it at once bring about).
  await compare("warm-up (with Genesis's download sender's start), not counted", 1);
  // The lowest ratio over the rounds for each client count, for goals.ts.
  const worst = new Map<number, number>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const clients of [1, 10, 50]) {
      worst.set(clients, Math.min(worst.get(clients) ?? Infinity, await compare(`round ${round}`, clients)));
    }
  }
  // The same small answer from both: Genesis renders boot.ipxe, nginx serves a copy of it as a
  // file. The clients, curl's 50 processes and this one share the two cores with the server, so
  // nginx's figure is the floor the machine allows.
  const bootIpxe = await (await fetch(`http://127.0.0.1:${genesis.port}/boot.ipxe`)).text();
  writeFileSync(path.join(dir, 'assets', 'ipxe', 'boot.ipxe'), bootIpxe);
  reference = await startReferenceServer(REFERENCE_PORT, bootIpxe);
  const measured = await latencyUnderLoad(genesis.port, '/boot.ipxe', { port: reference.port, path: '/boot.ipxe' });
  const l = measured.server;
  const lr = measured.alongside!;
  const ln = (await latencyUnderLoad(nginx.port, '/assets/ipxe/boot.ipxe')).server;
  const ms = (x: Latency) => `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms`;
  console.log(`GET /boot.ipxe while 50 downloads run: genesis ${ms(l)}; nginx (the same bytes as a file) ${ms(ln)}; p99 ratio ${(l.p99 / ln.p99).toFixed(2)}`);
  console.log(`the same bytes from the idle reference server, turn about with genesis during its downloads: ${ms(lr)}; genesis's p99 ÷ the reference's ${(l.p99 / lr.p99).toFixed(2)}`);
  recordFigures('assets', {
    ratio_1: worst.get(1),
    ratio_10: worst.get(10),
    ratio_50: worst.get(50),
    bootipxe_p50_ms: l.p50,
    bootipxe_p99_ms: l.p99,
    nginx_bootipxe_p99_ms: ln.p99,
    reference_bootipxe_p99_ms: lr.p99,
  });
} finally {
  await genesis.stop();
  await nginx.stop();
  await reference?.stop();
  rmSync(dir, { recursive: true, force: true });
}
