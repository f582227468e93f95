// How much memory an etcd snapshot costs Genesis: a fake Talos apid (the tests' one, mTLS)
// streams a snapshot of --size-mib (1024 by default) to a `genesis serve` process, and this
// script samples that process's RSS from /proc while the snapshot streams. The goal (issue 20):
// growth under 50 MB for 1 GiB, i.e. memory stays flat whatever the database size.
//
//   node bench/etcd-snapshot-memory.ts [--size-mib 1024] [--chunk-bytes 1024] [--repo <checkout>]
//
// Loopback only (127.0.41.2 for the fake node); everything stops by itself.

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSecrets } from '../src/talos/secrets.ts';
import { FakeTalos } from '../test/helpers/fake-talos.ts';
import { BENCH_TOKEN, startGenesis } from './peers.ts';
import { rssKiB } from './proc.ts';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '1024' }, 'chunk-bytes': { type: 'string', default: '1024' }, repo: { type: 'string' } } });
const sizeMib = Number(values['size-mib']);
/** Talos sends 1 KiB messages (pkg/chunker/stream's default). */
const chunkSize = Number(values['chunk-bytes']);
const repo = path.resolve(values.repo ?? path.join(import.meta.dirname, '..'));
const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bench-snap-'));


const genesis = await startGenesis(repo, dir, { GENESIS_BACKUP_ENABLED: 'false', GENESIS_BOOTSTRAP_ENABLED: 'false', GENESIS_BACKUP_TIMEOUT: '3600' });
let talos: FakeTalos | undefined;
try {
  const bundle = parseSecrets(readFileSync(path.join(dir, 'data', 'secrets.yaml'), 'utf8'));
  talos = await FakeTalos.start({ host: '127.0.41.2', port: 50000, bundle, hostname: 'cp-1', etcdMembers: ['cp-1'], snapshot: { pages: 16 } });
  const api = (method: string, p: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${genesis.port}/api/v1${p}`, {
      method,
      headers: { authorization: `Bearer ${BENCH_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  await api('PUT', '/nodes/52:54:00:00:41:01', { role: 'controlplane', network: { address: '127.0.41.2/8' } });
  // A first, tiny snapshot loads the gRPC stack and opens the mTLS connection: one-time costs
  // that are not what this measures (they are printed apart).
  const cold = rssKiB(genesis.pid);
  talos.opts.snapshot = { pages: 16 };
  if ((await api('POST', '/backups')).status !== 201) throw new Error('warm-up snapshot failed');
  talos.opts.snapshot = { pages: sizeMib * 256, chunkSize };
  const before = rssKiB(genesis.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(genesis.pid))), 50);
  const started = Date.now();
  const res = await api('POST', '/backups');
  clearInterval(sampler);
  peak = Math.max(peak, rssKiB(genesis.pid));
  const seconds = (Date.now() - started) / 1000;
  const body = (await res.json()) as { snapshot?: { name: string; size: number }; message?: string };
  if (!body.snapshot) throw new Error(`snapshot failed: ${res.status} ${body.message}`);
  const file = path.join(dir, 'data', 'backups', `${body.snapshot.name}.db`);
  console.log(`chunks of ${chunkSize} bytes`);
  console.log(`snapshot ${(statSync(file).size / 1048576).toFixed(0)} MiB in ${seconds.toFixed(1)} s (${(sizeMib / seconds).toFixed(0)} MiB/s)`);
  console.log(`genesis RSS at start ${(cold / 1024).toFixed(0)} MB; first (tiny) snapshot, gRPC and TLS set up: +${((before - cold) / 1024).toFixed(1)} MB`);
  console.log(`genesis RSS before ${(before / 1024).toFixed(0)} MB, peak ${(peak / 1024).toFixed(0)} MB, growth ${((peak - before) / 1024).toFixed(1)} MB (goal < 50 MB)`);
  console.log(`growth / snapshot size: ${((peak - before) / 1024 / sizeMib).toFixed(4)}`);
} finally {
  talos?.die();
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
}
