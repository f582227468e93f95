// TFTP benchmark: Genesis against tftpd-hpa and dnsmasq (TFTP only), same file, same client, same run.
//
//   node bench/tftp.ts [--rounds 15] [--concurrent 50] [--concurrent-rounds 5] [--lossy-rounds 8]
//
// Every server serves the same 1 MiB file on loopback. The client is atftp (one process per
// transfer, so process start-up is in every figure equally). Printed: median time per transfer,
// and each peer's time divided by Genesis's (above 1: Genesis is faster). Beside the single
// transfers, each server also sends a one-byte file: atftp's start and exit, the request and
// one block, which the 1 MiB figures less that one are the transfer itself (lock-step on
// loopback is fast enough that the client's start is a good part of a transfer's time). The concurrent rounds
// take turns between the servers, and each server's median is compared: one round each moved by
// up to 2× with the VM's load (its 50 clients and the server share both cores, which every
// server keeps busy; docs/performance.md).
// Needs: atftp, tftpd-hpa (in.tftpd), dnsmasq; binds 127.0.0.69:69 for dnsmasq (root).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LossyRelay } from '../test/helpers/lossy-relay.ts';
import { run, sha256, sha256File } from '../test/helpers/run.ts';
import { machineBusySeconds } from './proc.ts';
import { median, recordFigures } from './results.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    concurrent: { type: 'string', default: '50' },
    'concurrent-rounds': { type: 'string', default: '5' },
    'lossy-rounds': { type: 'string', default: '5' },
  },
});
const ROUNDS = Number(values.rounds);
const CONCURRENT = Number(values.concurrent);
const CONCURRENT_ROUNDS = Math.max(1, Number(values['concurrent-rounds']));
const LOSSY_ROUNDS = Number(values['lossy-rounds']);

type Server = { name: string; host: string; port: number; proc: ChildProcess };

const work = mkdtempSync(path.join(tmpdir(), 'genesis-bench-'));
const root = path.join(work, 'assets', 'ipxe');
mkdirSync(root, { recursive: true });
const file = randomBytes(1024 * 1024);
writeFileSync(path.join(root, 'bench.bin'), file);
// Under loss the peers wait about a second per lost packet, so the lossy runs use a smaller file.
const small = randomBytes(256 * 1024);
writeFileSync(path.join(root, 'small.bin'), small);
const oneByte = randomBytes(1);
writeFileSync(path.join(root, 'one.bin'), oneByte);
const digests: Record<string, string> = { 'bench.bin': sha256(file), 'small.bin': sha256(small), 'one.bin': sha256(oneByte) };
const SIZE_TEXT: Record<string, string> = { 'bench.bin': '1 MiB', 'small.bin': '256 KiB', 'one.bin': '1 byte' };
const digest = digests['bench.bin']!;
const procs: ChildProcess[] = [];

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
  return p;
}

/** Wait until the server answers a real transfer (bounded), so start-up is not measured. */
async function ready(s: Server): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const out = path.join(work, 'probe');
    await run('atftp', ['--get', '-r', 'bench.bin', '-l', out, '--tftp-timeout', '1', s.host, String(s.port)], { timeoutMs: 2000 });
    try {
      if (sha256File(out) === digest) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${s.name} did not come up`);
}

async function transfer(host: string, port: number, options: string[], out: string, name = 'bench.bin'): Promise<number> {
  const args = ['--get', '-r', name, '-l', out, '--tftp-timeout', '1'];
  for (const o of options) args.push('--option', o);
  args.push(host, String(port));
  const t0 = performance.now();
  rmSync(out, { force: true });
  await run('atftp', args, { timeoutMs: 120_000 });
  const ms = performance.now() - t0;
  let ok: boolean;
  try {
    ok = sha256File(out) === digests[name];
  } catch {
    ok = false; // no output file: the client gave up
  }
  // A failed transfer counts with the time it took, and is reported; it does not stop the run.
  if (!ok) failures.set(`${host}:${port}`, (failures.get(`${host}:${port}`) ?? 0) + 1);
  return ms;
}
const failures = new Map<string, number>();

type Row = { label: string; host: string; port: number; options: string[]; file?: string };

async function sequential(name: string, servers: Row[], rounds: number, fileName = 'bench.bin') {
  const times = new Map<string, number[]>(servers.map((s) => [s.label, []]));
  // Interleave servers within each round so drift in machine load hits all of them alike.
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) times.get(s.label)!.push(await transfer(s.host, s.port, s.options, path.join(work, 'out'), s.file ?? fileName));
  }
  const genesis = median(times.get(servers[0]!.label)!);
  console.log(`\n${name} (median of ${rounds} transfers, ${SIZE_TEXT[fileName]}${servers.some((s) => s.file) ? ' unless the row says' : ''})`);
  for (const s of servers) {
    const m = median(times.get(s.label)!);
    const failed = failures.get(`${s.host}:${s.port}`);
    if (failed) console.log(`  (${s.label}: ${failed} failed transfers so far on ${s.host}:${s.port})`);
    const ratio = s === servers[0] || s.file ? '' : `  ratio ${s.label}/${servers[0]!.label} = ${(m / genesis).toFixed(2)}`;
    console.log(`  ${s.label.padEnd(28)} ${m.toFixed(1).padStart(8)} ms${ratio}`);
  }
  return times;
}

/**
 * Wall time of CONCURRENT transfers at once, and the machine's busy CPU time meanwhile: the same
 * clients for every server, so the differences are the servers' (tftpd-hpa forks a process per
 * transfer, which no per-process figure would count).
 */
async function concurrent(server: Server, options: string[]): Promise<{ ms: number; cpu: number }> {
  const cpu0 = machineBusySeconds();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => transfer(server.host, server.port, options, path.join(work, `c-${i}`))));
  return { ms: performance.now() - t0, cpu: machineBusySeconds() - cpu0 };
}

async function main() {
  const servers: Server[] = [];
  const genesisPort = 16969;
  servers.push({
    name: 'genesis',
    host: '127.0.0.1',
    port: genesisPort,
    proc: start(process.execPath, [path.resolve(import.meta.dirname, '../bin/genesis.js'), 'serve'], {
      GENESIS_TFTP_PORT: String(genesisPort),
      GENESIS_TFTP_HOST: '127.0.0.1',
      GENESIS_HTTP_PORT: '0',
      GENESIS_HTTP_HOST: '127.0.0.1',
      GENESIS_ASSETS_DIR: path.join(work, 'assets'),
      GENESIS_DATA_DIR: path.join(work, 'data'),
      GENESIS_ADVERTISE_ADDR: '127.0.0.1',
      GENESIS_LOG_LEVEL: 'warn',
      GENESIS_LOG_FORMAT: 'json',
      // Every client here is 127.0.0.1, where on a LAN each machine has its own address; at
      // Genesis's default of 16 transfers per address the other clients were turned away and
      // waited out atftp's retry, which is the per-address cap at work, not transfer speed.
      GENESIS_TFTP_MAX_TRANSFERS_PER_CLIENT: String(Math.max(16, CONCURRENT)),
    }),
  });
  servers.push({ name: 'tftpd-hpa', host: '127.0.0.1', port: 16970, proc: start('in.tftpd', ['-L', '-s', root, '-a', '127.0.0.1:16970']) });
  servers.push({
    name: 'dnsmasq',
    host: '127.0.0.69',
    port: 69,
    proc: start('dnsmasq', ['-k', '--port=0', '--enable-tftp', `--tftp-root=${root}`, '--listen-address=127.0.0.69', '--bind-interfaces', '--conf-file=/dev/null', '--quiet-tftp', '--tftp-max=1000', '--pid-file=', '--user=root']),
  });
  for (const s of servers) await ready(s);
  const [g, hpa, dm] = servers as [Server, Server, Server];
  console.log(`TFTP benchmark, ${new Date().toISOString()}, node ${process.version}, client atftp`);

  const lockStep = ['blksize 1468'];
  const single = await sequential(
    'One transfer, lock-step, blksize 1468',
    [
      { label: 'genesis', host: g.host, port: g.port, options: lockStep },
      { label: 'tftpd-hpa', host: hpa.host, port: hpa.port, options: lockStep },
      { label: 'dnsmasq', host: dm.host, port: dm.port, options: lockStep },
      { label: 'genesis windowsize 16', host: g.host, port: g.port, options: [...lockStep, 'windowsize 16'] },
      { label: 'genesis, 1 byte', host: g.host, port: g.port, options: lockStep, file: 'one.bin' },
      { label: 'tftpd-hpa, 1 byte', host: hpa.host, port: hpa.port, options: lockStep, file: 'one.bin' },
      { label: 'dnsmasq, 1 byte', host: dm.host, port: dm.port, options: lockStep, file: 'one.bin' },
    ],
    ROUNDS,
  );
  const m = (label: string) => median(single.get(label)!);
  // The transfer itself: the 1 MiB median less the same server's one-byte median (the client's start and exit).
  const net = { genesis: m('genesis') - m('genesis, 1 byte'), hpa: m('tftpd-hpa') - m('tftpd-hpa, 1 byte'), dnsmasq: m('dnsmasq') - m('dnsmasq, 1 byte'), window: m('genesis windowsize 16') - m('genesis, 1 byte') };
  console.log(`  less each server's 1-byte transfer (the client's start): genesis ${net.genesis.toFixed(1)} ms, tftpd-hpa ${net.hpa.toFixed(1)} ms (ratio ${(net.hpa / net.genesis).toFixed(2)}), dnsmasq ${net.dnsmasq.toFixed(1)} ms (ratio ${(net.dnsmasq / net.genesis).toFixed(2)}), genesis windowsize 16 ${net.window.toFixed(1)} ms`);
  console.log(`  windowsize 16 speed-up over lock-step (genesis): ${(m('genesis') / m('genesis windowsize 16')).toFixed(2)}x; less the client's start: ${(net.genesis / net.window).toFixed(2)}x`);

  console.log(`\n${CONCURRENT} concurrent clients, lock-step, blksize 1468 (wall time for all; median of ${CONCURRENT_ROUNDS} rounds, taking turns; the machine's CPU meanwhile, clients included)`);
  const rounds = { genesis: [] as number[], 'tftpd-hpa': [] as number[], dnsmasq: [] as number[] };
  const cpu = { genesis: [] as number[], 'tftpd-hpa': [] as number[], dnsmasq: [] as number[] };
  for (let r = 0; r < CONCURRENT_ROUNDS; r++) {
    for (const [name, s] of [['genesis', g], ['tftpd-hpa', hpa], ['dnsmasq', dm]] as const) {
      const { ms, cpu: seconds } = await concurrent(s, ['blksize 1468']);
      rounds[name].push(ms);
      cpu[name].push(seconds);
    }
  }
  const [cg, ch, cd] = [median(rounds.genesis), median(rounds['tftpd-hpa']), median(rounds.dnsmasq)];
  const [ug, uh, ud] = [median(cpu.genesis), median(cpu['tftpd-hpa']), median(cpu.dnsmasq)];
  const spread = (xs: number[]) => `(${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  const cpuText = (u: number) => `machine CPU ${(u * 1000).toFixed(0)} ms`;
  console.log(`  genesis   ${cg.toFixed(0).padStart(8)} ms ${spread(rounds.genesis)}  ${cpuText(ug)}`);
  console.log(`  tftpd-hpa ${ch.toFixed(0).padStart(8)} ms ${spread(rounds['tftpd-hpa'])}  ratio tftpd-hpa/genesis = ${(ch / cg).toFixed(2)}  ${cpuText(uh)}`);
  console.log(`  dnsmasq   ${cd.toFixed(0).padStart(8)} ms ${spread(rounds.dnsmasq)}  ratio dnsmasq/genesis = ${(cd / cg).toFixed(2)}  ${cpuText(ud)}`);
  recordFigures('tftp', { single_ms: m('genesis'), tftpd_hpa_single_ms: m('tftpd-hpa'), single_net_ms: net.genesis, tftpd_hpa_single_net_ms: net.hpa, concurrent_ms: cg, tftpd_hpa_concurrent_ms: ch, ratio_to_tftpd_hpa: cg / ch, ratio_to_dnsmasq: cg / cd, machine_cpu_s: ug, tftpd_hpa_machine_cpu_s: uh, dnsmasq_machine_cpu_s: ud });

  // Through a relay: each server behind its own, first dropping nothing (every packet crosses a
  // userspace hop, a round trip more like a LAN's than loopback's), then dropping 5% each way,
  // same seed for all (--lossy-rounds 0 leaves both out).
  if (LOSSY_ROUNDS < 1) return;
  const relaysAt = (lossPercent: number) =>
    Promise.all(
      servers.map(async (s) => {
        const relay = new LossyRelay({ host: s.host, port: s.port }, lossPercent, 1234);
        return { s, relay, port: await relay.start() };
      }),
    );
  /** Each server behind its own relay (in the order of `servers`), and Genesis with windowsize 16. */
  const behind = (relays: Array<{ port: number }>, options: string[]): Row[] => [
    { label: 'genesis', host: '127.0.0.1', port: relays[0]!.port, options },
    { label: 'tftpd-hpa', host: '127.0.0.1', port: relays[1]!.port, options },
    { label: 'dnsmasq', host: '127.0.0.1', port: relays[2]!.port, options },
    { label: 'genesis windowsize 16', host: '127.0.0.1', port: relays[0]!.port, options: [...options, 'windowsize 16'] },
  ];
  const clean = await relaysAt(0);
  const hop = await sequential('Through a relay that drops nothing (a round trip per block, as on a LAN)', behind(clean, lockStep), LOSSY_ROUNDS);
  console.log(`  windowsize 16 speed-up over lock-step (genesis): ${(median(hop.get('genesis')!) / median(hop.get('genesis windowsize 16')!)).toFixed(2)}x`);
  for (const r of clean) r.relay.close();
  const relays = await relaysAt(5);
  await sequential('5% loss each way, client asks timeout 1', behind(relays, ['blksize 1468', 'timeout 1']), LOSSY_ROUNDS, 'small.bin');
  for (const r of relays) r.relay.close();
}

try {
  await main();
} finally {
  for (const p of procs) p.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
