// The TFTP loss matrix: every real client here, 10 transfers of 70 KiB at once through a relay
// that drops a share of packets each way (one mapping per client port, as a NAT keeps), for a
// number of rounds with different seeds. Prints transfers attempted and completed per client and
// loss, and how the server ended its side of each. The test suite runs one round of this
// (test/integration/tftp-clients.test.ts); this is for more rounds and for comparing checkouts.
//
//   node bench/tftp-loss.ts [--loss 5,10] [--rounds 3] [--clients curl,atftp,atftp-own-timer,atftp-w8,tftp-hpa] [--repo <checkout>]
//
// --repo: run another checkout's TFTP server (e.g. a worktree of an older commit) with the same clients.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LossyRelay } from '../test/helpers/lossy-relay.ts';
import { run, sha256, sha256File } from '../test/helpers/run.ts';

const { values } = parseArgs({
  options: {
    loss: { type: 'string', default: '5,10' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: 'curl,atftp,atftp-own-timer,atftp-w8,tftp-hpa' },
    repo: { type: 'string' },
  },
});
const repo = path.resolve(values.repo ?? path.join(import.meta.dirname, '..'));
const { startTftp } = (await import(path.join(repo, 'test/helpers/tftp-server.ts'))) as typeof import('../test/helpers/tftp-server.ts');

const FILE = 'seventy.bin';
const clients: Record<string, (port: number, dest: string) => ReturnType<typeof run>> = {
  curl: (p, d) => run('curl', ['-sS', '--tftp-blksize', '1468', '-o', d, `tftp://127.0.0.1:${p}/${FILE}`]),
  atftp: (p, d) => run('atftp', ['--get', '-r', FILE, '-l', d, '--tftp-timeout', '1', '--option', 'blksize 1468', '--option', 'timeout 1', '127.0.0.1', String(p)]),
  'atftp-own-timer': (p, d) => run('atftp', ['--get', '-r', FILE, '-l', d, '--option', 'blksize 1468', '--option', 'timeout 1', '127.0.0.1', String(p)]),
  'atftp-w8': (p, d) => run('atftp', ['--get', '-r', FILE, '-l', d, '--tftp-timeout', '1', '--option', 'blksize 1468', '--option', 'windowsize 8', '--option', 'timeout 1', '127.0.0.1', String(p)]),
  'tftp-hpa': (p, d) => run('tftp', ['-m', 'octet', '127.0.0.1', String(p), '-c', 'get', FILE, d]),
};

const srv = await startTftp();
const out = mkdtempSync(path.join(tmpdir(), 'genesis-tftp-loss-'));
const data = randomBytes(70 * 1024);
writeFileSync(path.join(srv.root, FILE), data);
const want = sha256(data);
const ends: Record<string, number> = {};
srv.server.on('transfer-end', (s: { outcome: string }) => void (ends[s.outcome] = (ends[s.outcome] ?? 0) + 1));

console.log(`server: ${repo}`);
for (const loss of values.loss.split(',').map(Number)) {
  for (const name of values.clients.split(',')) {
    const client = clients[name];
    if (!client) throw new Error(`unknown client ${name}: ${Object.keys(clients).join(', ')}`);
    let ok = 0;
    let tried = 0;
    const started = performance.now();
    for (let round = 0; round < Number(values.rounds); round++) {
      const relay = new LossyRelay({ host: '127.0.0.1', port: srv.port }, loss, 1000 + round * 7 + loss);
      const port = await relay.start();
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const dest = path.join(out, `${name}-${loss}-${round}-${i}`);
          const r = await client(port, dest);
          tried++;
          if (existsSync(dest) && sha256File(dest) === want) ok++;
          else console.log(`  failed: ${name} round ${round} #${i}: exit ${r.code}: ${r.stderr.replace(/\s+/g, ' ').slice(-600)}`);
        }),
      );
      relay.close();
    }
    console.log(`${String(loss).padStart(3)}% ${name.padEnd(16)} ${ok}/${tried} completed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}
console.log(`server side: ${JSON.stringify(ends)}`);
await srv.close();
rmSync(out, { recursive: true, force: true });
process.exit(0);
