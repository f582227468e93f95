// Simulated machines for the boot-storm bench (storm.ts): N machines booting at once, each from
// its own loopback address (127.0.X.Y), doing what PXE firmware, iPXE and Talos do:
//   1. TFTP read of undionly.kpxe, lock-step, blksize 1468, checked by sha256;
//   2. GET /boot.ipxe;
//   3. GET /ipxe/node?mac=…&buildarch=i386&platform=pcbios (the machine's script);
//   4. GET the kernel and initramfs URLs written in that script, sizes checked;
//   5. GET the talos.config= URL from that script (200, a machine config).
// One machine's HTTP requests share one keep-alive connection, as iPXE's do; a response that
// closes its connection is followed by a new one. The client speaks raw HTTP/1.1 over net.Socket,
// so it costs little and the same for every server. The measuring (server CPU and peak RSS from
// /proc) is here too: the JSON it returns has the fields of the shared kit's bootsim.py, so the
// two compare in one run (storm.ts --sim).
//
// Loopback only. A TFTP transfer gives up after 8 retransmits a second apart; the storm as a
// whole fails after `timeoutMs` (120 s by default), and the servers' stopping ends what is left.

import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { decode, encodeAck, encodeRequest } from '../src/tftp/packet.ts';
import { cpuSeconds, pssKiB, rssKiB, withChildren } from './proc.ts';

export type StormOptions = {
  n: number;
  http: { host: string; port: number };
  tftp: { host: string; port: number };
  /** The file the TFTP server serves as undionly.kpxe: what each machine checks its copy against. */
  kpxe: Buffer;
  kernelSize: number;
  initrdSize: number;
  /** Server processes to measure; their children (nginx's workers, Genesis's sender) are found at each sample. */
  watch: number[];
  macPrefix: string;
  timeoutMs?: number;
};

const STEPS = ['tftp', 'bootipxe', 'script', 'assets', 'config'] as const;
type Step = (typeof STEPS)[number];

export type StormResult = {
  n: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  wall_ms: number;
  machine_p50_ms: number | null;
  machine_p95_ms: number | null;
  machine_max_ms: number | null;
  steps: Record<Step, { p50_ms: number | null; p95_ms: number | null }>;
  server_cpu_s: number;
  server_peak_rss_kb: number | null;
  /** The server processes' summed Pss when their summed VmRSS peaked: shared pages counted once (null where smaps_rollup cannot be read). */
  server_pss_at_peak_kb: number | null;
  client_cpu_s: number;
  /**
   * How late the simulator's own event loop ran its callbacks (p95, max): a reply that arrived
   * waits at least this long to be read, so every step's time includes it, whatever the server.
   */
  client_loop_delay_p95_ms: number;
  client_loop_delay_max_ms: number;
};

class Fail extends Error {}

export const macOf = (prefix: string, i: number) => `${prefix}-${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join('-')}`;
const srcOf = (i: number) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

// ------------------------------------------------------------------ TFTP, lock-step, blksize 1468

function tftpGet(src: string, server: { host: string; port: number }, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const parts: Buffer[] = [];
    let blksize = 512;
    let next = 1;
    let peer: { address: string; port: number } | undefined;
    let last: { pkt: Buffer; port: number; address: string } | undefined;
    let retries = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++retries > 8) return finish(new Fail('tftp timeout'));
        if (last) sock.send(last.pkt, last.port, last.address);
        arm();
      }, 1000);
    };
    const send = (pkt: Buffer, port: number, address: string) => {
      last = { pkt, port, address };
      sock.send(pkt, port, address);
      arm();
    };
    sock.on('error', (err) => finish(err));
    sock.on('message', (raw, rinfo) => {
      if (settled) return;
      if (!peer) peer = { address: rinfo.address, port: rinfo.port };
      else if (rinfo.port !== peer.port || rinfo.address !== peer.address) return;
      const packet = decode(raw);
      if (packet.kind === 'error') return finish(new Fail(`tftp error ${packet.message}`));
      if (packet.kind === 'oack') {
        blksize = Number(packet.options.get('blksize') ?? blksize);
        retries = 0;
        return send(encodeAck(0), rinfo.port, rinfo.address);
      }
      if (packet.kind !== 'data') return;
      if (packet.block !== (next & 0xffff)) return void sock.send(encodeAck((next - 1) & 0xffff), rinfo.port, rinfo.address);
      parts.push(packet.data);
      next++;
      retries = 0;
      if (packet.data.length < blksize) {
        clearTimeout(timer);
        sock.send(encodeAck(packet.block), rinfo.port, rinfo.address, () => finish());
      } else send(encodeAck(packet.block), rinfo.port, rinfo.address);
    });
    sock.bind(0, src, () => send(encodeRequest('rrq', name, 'octet', new Map([['blksize', '1468']])), server.port, server.host));
  });
}

// ------------------------------------------------------------------ HTTP/1.1, one keep-alive connection

/**
 * Every connection reads into this one buffer (Node's `onread`): a body only counted is never
 * copied, and no buffer is allocated per read, so the client's own CPU stays small beside the
 * servers'. Sharing it is safe: each read is handled before the next one begins.
 */
const READ_BUFFER = Buffer.alloc(1024 * 1024);

/** One TCP connection's bytes as they arrive; a closed connection's late events touch only its own. */
class Connection {
  buffered: Buffer = Buffer.alloc(0);
  ended = false;
  failure: Error | undefined;
  /** Bytes still to be counted, not kept (a kernel or initramfs body). */
  private sinking = 0;
  private waiter: (() => void) | undefined;
  sock!: net.Socket;

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  attach(sock: net.Socket): void {
    this.sock = sock;
    sock.on('error', (err) => {
      this.failure = err;
      this.wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Node's onread callback: `buf` is READ_BUFFER, reused by the next read. True: read on. */
  onRead(n: number, buf: Buffer): boolean {
    let from = 0;
    if (this.sinking > 0) {
      from = Math.min(n, this.sinking);
      this.sinking -= from;
    }
    if (from < n) {
      const copy = Buffer.from(buf.subarray(from, n));
      this.buffered = this.buffered.length === 0 ? copy : Buffer.concat([this.buffered, copy]);
    }
    this.wake();
    return true;
  }

  /** Waits for more bytes; false at the connection's end. */
  async more(): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.ended) return false;
    await new Promise<void>((resolve) => (this.waiter = resolve));
    if (this.failure) throw this.failure;
    return !(this.ended && this.buffered.length === 0);
  }

  take(n: number): Buffer {
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Counts the next `n` bytes without keeping them; resolves once all have arrived. */
  async sink(n: number): Promise<void> {
    const already = Math.min(n, this.buffered.length);
    this.take(already);
    this.sinking = n - already;
    while (this.sinking > 0) if (!(await this.more()) && this.sinking > 0) throw new Fail('short body');
  }
}

/** A machine's HTTP: raw HTTP/1.1 GETs on one kept-alive connection, bodies kept or only counted. */
class MachineHttp {
  private conn: Connection | undefined;
  private readonly src: string;
  private readonly server: { host: string; port: number };

  constructor(src: string, server: { host: string; port: number }) {
    this.src = src;
    this.server = server;
  }

  close(): void {
    this.conn?.sock.destroy();
    this.conn = undefined;
  }

  private async connect(): Promise<Connection> {
    const conn = new Connection();
    const sock = net.connect({ host: this.server.host, port: this.server.port, localAddress: this.src, onread: { buffer: READ_BUFFER, callback: (n) => conn.onRead(n, READ_BUFFER) } });
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    conn.attach(sock);
    this.conn = conn;
    return conn;
  }

  /** GET an absolute URL on this server or a path; the body, or only its length when `sink`. */
  async get(url: string, sink = false): Promise<{ status: number; body: Buffer; length: number }> {
    let target = url;
    if (url.startsWith('http://')) {
      const u = new URL(url);
      if (u.host !== `${this.server.host}:${this.server.port}`) throw new Fail(`URL points elsewhere: ${url}`);
      target = u.pathname + u.search;
    }
    for (let attempt = 0; ; attempt++) {
      const reused = this.conn !== undefined;
      const conn = this.conn ?? (await this.connect());
      conn.sock.write(`GET ${target} HTTP/1.1\r\nHost: ${this.server.host}:${this.server.port}\r\nUser-Agent: iPXE/1.0.0+ (genesis bench)\r\nConnection: keep-alive\r\n\r\n`);
      const head = await readHead(conn).catch((err: unknown) => {
        this.close();
        // A kept-alive connection the server had closed meanwhile: once more, on a fresh one.
        if (reused && attempt === 0) return undefined;
        throw err;
      });
      if (!head) continue;
      const { length, body, close } = await readBody(conn, head.headers, sink);
      if (close) this.close();
      return { status: head.status, body, length };
    }
  }
}

async function readHead(conn: Connection): Promise<{ status: number; headers: Map<string, string> }> {
  let end: number;
  while ((end = conn.buffered.indexOf('\r\n\r\n')) < 0) if (!(await conn.more())) throw new Fail('closed before answering');
  const lines = conn.take(end + 4).toString('latin1').split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers };
}

async function readBody(conn: Connection, headers: Map<string, string>, sink: boolean): Promise<{ length: number; body: Buffer; close: boolean }> {
  const kept: Buffer[] = [];
  let length = 0;
  const keep = (b: Buffer) => {
    length += b.length;
    if (!sink) kept.push(Buffer.from(b));
  };
  let close = headers.get('connection')?.toLowerCase() === 'close';
  if (headers.has('content-length') && sink) {
    length = Number(headers.get('content-length'));
    await conn.sink(length);
  } else if (headers.has('content-length')) {
    const n = Number(headers.get('content-length'));
    while (length < n) {
      if (conn.buffered.length === 0 && !(await conn.more())) throw new Fail('short body');
      keep(conn.take(n - length));
    }
  } else if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
    for (;;) {
      let eol: number;
      while ((eol = conn.buffered.indexOf('\r\n')) < 0) if (!(await conn.more())) throw new Fail('short chunk');
      const size = parseInt(conn.take(eol + 2).toString('latin1'), 16);
      while (conn.buffered.length < size + 2) if (!(await conn.more())) throw new Fail('short chunk');
      keep(conn.take(size));
      conn.take(2);
      if (size === 0) break;
    }
  } else {
    while (await conn.more()) keep(conn.take(conn.buffered.length));
    keep(conn.take(conn.buffered.length));
    close = true;
  }
  return { length, body: sink ? Buffer.alloc(0) : Buffer.concat(kept), close };
}

// ------------------------------------------------------------------ one machine

async function machine(i: number, o: StormOptions, kpxeSha: string, start: Promise<void>): Promise<{ ok: true; t: Record<'start' | Step, number> } | { ok: false; err: string }> {
  const src = srcOf(i);
  const mac = macOf(o.macPrefix, i);
  await start;
  const t: Partial<Record<'start' | Step, number>> = { start: performance.now() };
  const http = new MachineHttp(src, o.http);
  try {
    const kpxe = await tftpGet(src, o.tftp, 'undionly.kpxe');
    if (createHash('sha256').update(kpxe).digest('hex') !== kpxeSha) throw new Fail('kpxe corrupt');
    t.tftp = performance.now();
    const boot = await http.get('/boot.ipxe');
    if (boot.status !== 200 || !boot.body.toString('latin1').startsWith('#!ipxe')) throw new Fail(`boot.ipxe ${boot.status}`);
    t.bootipxe = performance.now();
    const script = await http.get(`/ipxe/node?mac=${mac}&buildarch=i386&platform=pcbios&uuid=&serial=&manufacturer=&product=`);
    if (script.status !== 200) throw new Fail(`node script ${script.status}`);
    let kernel: string | undefined;
    let initrd: string | undefined;
    let config: string | undefined;
    for (const line of script.body.toString('utf8').split('\n')) {
      const w = line.trim().split(/\s+/);
      if (w[0] === 'kernel') {
        kernel = w[1];
        config = w.find((a) => a.startsWith('talos.config='))?.slice('talos.config='.length);
      }
      if (w[0] === 'initrd') initrd = w.find((a) => a.startsWith('http://'));
    }
    if (!kernel || !initrd || !config) throw new Fail(`node script without install: ${script.body.subarray(0, 80).toString()}`);
    t.script = performance.now();
    const k = await http.get(kernel, true);
    if (k.status !== 200 || k.length !== o.kernelSize) throw new Fail(`kernel ${k.status} ${k.length}`);
    const r = await http.get(initrd, true);
    if (r.status !== 200 || r.length !== o.initrdSize) throw new Fail(`initrd ${r.status} ${r.length}`);
    t.assets = performance.now();
    const c = await http.get(config);
    if (c.status !== 200 || !c.body.includes('machine:')) throw new Fail(`config ${c.status}`);
    t.config = performance.now();
    return { ok: true, t: t as Record<'start' | Step, number> };
  } catch (err) {
    return { ok: false, err: `${err instanceof Fail ? 'Fail' : (err as Error).name}: ${(err as Error).message}` };
  } finally {
    http.close();
  }
}

// ------------------------------------------------------------------ measuring the servers

function pct(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10;
}

// ------------------------------------------------------------------ the storm

export async function runStorm(o: StormOptions): Promise<StormResult> {
  const kpxeSha = createHash('sha256').update(o.kpxe).digest('hex');
  // CPU of each process seen during the run, from its first sample: a child that starts (or
  // exits) mid-run counts what it used while watched.
  const cpuAtStart = new Map<number, number>();
  const cpuLast = new Map<number, number>();
  let peakRss = 0;
  let pssAtPeak: number | undefined;
  const sample = () => {
    let rss = 0;
    const pids = withChildren(o.watch);
    for (const p of pids) {
      if (!cpuAtStart.has(p)) cpuAtStart.set(p, cpuSeconds(p));
      const cpu = cpuSeconds(p);
      if (cpu > 0) cpuLast.set(p, cpu);
      rss += rssKiB(p);
    }
    if (rss <= peakRss) return;
    peakRss = rss;
    // Only at a new peak: Pss costs a walk of the page tables, and this is the moment reported.
    const pss = pids.map(pssKiB);
    pssAtPeak = pss.every((v) => v !== undefined) ? pss.reduce((a, b) => a + b, 0) : undefined;
  };
  sample();
  const sampler = setInterval(sample, 100);
  let go!: () => void;
  const start = new Promise<void>((resolve) => (go = resolve));
  const runs = Array.from({ length: o.n }, (_, i) => machine(i, o, kpxeSha, start));
  const usage0 = process.cpuUsage();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const t0 = performance.now();
  go();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the storm did not end in ${o.timeoutMs ?? 120_000} ms`)), o.timeoutMs ?? 120_000)));
  let results: Awaited<(typeof runs)[number]>[];
  try {
    results = await Promise.race([Promise.all(runs), timeout]);
  } finally {
    clearTimeout(timer);
    clearInterval(sampler);
  }
  const wall = performance.now() - t0;
  loopDelay.disable();
  const usage = process.cpuUsage(usage0);
  sample();
  let serverCpu = 0;
  for (const [p, c0] of cpuAtStart) serverCpu += (cpuLast.get(p) ?? c0) - c0;

  const ok = results.filter((r) => r.ok);
  const errors: Record<string, number> = {};
  for (const r of results) if (!r.ok) errors[r.err] = (errors[r.err] ?? 0) + 1;
  const steps = {} as StormResult['steps'];
  for (const [k, step] of STEPS.entries()) {
    const prev = k === 0 ? 'start' : STEPS[k - 1]!;
    const d = ok.map((r) => r.t[step] - r.t[prev]);
    steps[step] = { p50_ms: pct(d, 0.5), p95_ms: pct(d, 0.95) };
  }
  const total = ok.map((r) => r.t.config - r.t.start);
  return {
    n: o.n,
    ok: ok.length,
    failed: o.n - ok.length,
    errors,
    wall_ms: Math.round(wall * 10) / 10,
    machine_p50_ms: pct(total, 0.5),
    machine_p95_ms: pct(total, 0.95),
    machine_max_ms: pct(total, 1),
    steps,
    server_cpu_s: Math.round(serverCpu * 100) / 100,
    server_peak_rss_kb: peakRss || null,
    server_pss_at_peak_kb: pssAtPeak ?? null,
    client_cpu_s: Math.round((usage.user + usage.system) / 1e4) / 100,
    // The histogram records the whole interval between its 10 ms ticks, in ns: the delay is what is over 10 ms.
    client_loop_delay_p95_ms: Math.round(Math.max(0, loopDelay.percentile(95) / 1e6 - 10) * 10) / 10,
    client_loop_delay_max_ms: Math.round(Math.max(0, loopDelay.max / 1e6 - 10) * 10) / 10,
  };
}
