// A boot storm: N machines boot at once through Genesis, end to end (TFTP undionly.kpxe,
// boot.ipxe, the per-node script, a 10 MiB kernel and 20 MiB initramfs, the machine config),
// each from its own 127.0.x.y, driven by the shared kit's simulator (../shared/bench/bootsim.py).
// Machines are auto-assigned so every one gets an install script and its config.
//
//   node bench/storm.ts [--n 200] [--repo <another checkout>] [--sim ../shared/bench/bootsim.py]
//
// Prints the simulator's JSON line (wall time, per-step p50/p95, server CPU and peak RSS).
// Loopback only; the simulator stops at its own timeout.

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startGenesis } from './peers.ts';

const { values } = parseArgs({ options: { n: { type: 'string' }, repo: { type: 'string' }, sim: { type: 'string' } } });
const here = path.join(import.meta.dirname, '..');
const sim = path.resolve(values.sim ?? path.join(here, '..', 'shared', 'bench', 'bootsim.py'));
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

const genesis = await startGenesis(path.resolve(values.repo ?? here), dir, {
  GENESIS_AUTO_ASSIGN_ENABLED: 'true',
  GENESIS_TFTP_HOST: '127.0.0.1',
});
try {
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn('python3', [sim, '--n', N, '--http', `127.0.0.1:${genesis.port}`, '--tftp', `127.0.0.1:${genesis.tftpPort}`, '--kpxe', kpxe, '--kernel-size', String(KERNEL), '--initrd-size', String(INITRD), '--watch', String(genesis.pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`bootsim exited ${code}: ${text}`))));
  });
  console.log(out.trim());
} finally {
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
}
