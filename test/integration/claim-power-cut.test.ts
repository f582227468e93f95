// The claim API under a full power cut: N nodes (3, 5, 7) claim at once over real HTTP, each
// several times (a node that lost power before it kept its answer asks again), while the
// `genesis serve` process is SIGKILLed at a random point of the exchange and started again on
// the same data dir. In every trial exactly one node is ever told `init`, every other answer is
// `join` naming it, and every node gets an answer.
//
// CLAIM_TRIALS sets the trials per N (default 3 here; the figure in docs/bootstrap.md comes from
// CLAIM_TRIALS=70, 210 trials in all).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { joinToken } from '../../src/bootstrap/join-token.ts';
import { BootstrapLocks } from '../../src/bootstrap/lock-store.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { FIXTURE_SECRETS, loopbackServeEnv, seedSecrets } from '../helpers/genesis-app.ts';
import { GenesisProcess } from '../helpers/genesis-process.ts';

const CLUSTER = 'k3s-lab';
const TRIALS = Number(process.env['CLAIM_TRIALS'] ?? 3);
const CLAIMS_PER_NODE = 3;
const token = joinToken(parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8')), CLUSTER);

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/**
 * A free port below the kernel's ephemeral range, for a Genesis restarted on it. One from the range
 * (listen on port 0) was free again while Genesis was down, and a listen on port 0 elsewhere (the
 * other test files run meanwhile) could take it: the restart failed once in CI with EADDRINUSE.
 * The kernel never hands out a port below the range by itself.
 */
async function freePort(): Promise<number> {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const floor = 10_000;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = floor + Math.floor(Math.random() * Math.max(1, low - floor));
    const s = createServer();
    const bound = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (bound) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error(`no free port between ${floor} and ${low}`);
}

type Answer = { mac: string; decision: 'init' | 'join'; leader: { mac: string; ip: string | null }; epoch: number };

/** What the k3s recipe's claim script does: ask until there is an answer (any failure: ask again). */
async function claimUntilAnswered(port: number, mac: string, address: string, deadline: number): Promise<Answer> {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/bootstrap/claim`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mac, address }),
        signal: AbortSignal.timeout(5000),
      });
      if (res.status === 200) return { mac, ...((await res.json()) as Omit<Answer, 'mac'>) };
    } catch {
      // Genesis is down (refused, reset): the node asks again, as the recipe's loop does.
    }
    if (Date.now() > deadline) throw new Error(`${mac}: no answer from the claim API before the deadline`);
    // The recipe waits 5 s between attempts; here a few ms keeps the nodes asking through the restart.
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function trial(n: number, seed: number): Promise<{ answers: Answer[]; killedAfter: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-claim-cut-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = path.join(dir, 'data');
  seedSecrets(dataDir);
  const port = await freePort();
  const env = { ...loopbackServeEnv(dataDir, path.join(dir, 'assets')), GENESIS_HTTP_PORT: String(port), GENESIS_CLUSTER_NAME: CLUSTER, GENESIS_BOOTSTRAP_ENABLED: 'false', GENESIS_LOG_LEVEL: 'info' };
  const start = async () => {
    const p = new GenesisProcess(['serve'], env);
    cleanup.push(() => p.kill('SIGKILL'));
    await p.ready();
    return p;
  };
  let genesis = await start();

  // The cut comes after a random number of answers (0: before any), so it lands before, during
  // and after the winning commit across the trials.
  const killedAfter = seed % (n * CLAIMS_PER_NODE);
  const answers: Answer[] = [];
  let cut: Promise<void> | undefined;
  const cutNow = () => {
    cut ??= (async () => {
      genesis.kill('SIGKILL');
      await genesis.exit();
      genesis = await start();
    })();
  };
  if (killedAfter === 0) cutNow();
  const deadline = Date.now() + 60_000;
  const macs = Array.from({ length: n }, (_, i) => `52:54:00:0c:${n.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`);
  await Promise.all(
    macs.map(async (mac, i) => {
      for (let k = 0; k < CLAIMS_PER_NODE; k++) {
        const a = await claimUntilAnswered(port, mac, `192.0.2.${10 + i}`, deadline);
        answers.push(a);
        if (answers.length === killedAfter) cutNow();
      }
    }),
  );
  await cut;
  genesis.kill('SIGTERM');
  expect(await genesis.exit()).toBe(0);
  // What the lock says on disk after it all: the one node told to init.
  const db = new Database(path.join(dataDir, 'genesis.db'), { readonly: true });
  const lock = new BootstrapLocks(db).get(CLUSTER);
  db.close();
  const inits = new Set(answers.filter((a) => a.decision === 'init').map((a) => a.mac));
  expect(inits.size).toBe(1);
  expect(lock).toMatchObject({ state: 'bootstrap-sent', holder: [...inits][0], epoch: 1 });
  return { answers, killedAfter };
}

describe('claims through a power cut', () => {
  for (const n of [3, 5, 7]) {
    it(`${n} nodes, ${TRIALS} trials, Genesis killed at a random point of each: exactly one init per trial`, { timeout: 60_000 + TRIALS * 15_000 }, async () => {
      let trials = 0;
      for (let t = 0; t < TRIALS; t++) {
        const seed = Math.floor(Math.random() * 1_000_000);
        const { answers } = await trial(n, seed);
        const leader = answers.find((a) => a.decision === 'init')!;
        // Every node has an answer; every join names the one leader, at the address it reported.
        expect(new Set(answers.map((a) => a.mac)).size).toBe(n);
        for (const a of answers) {
          expect(a.leader).toEqual(leader.leader);
          expect(a.epoch).toBe(1);
          expect(a.decision).toBe(a.mac === leader.mac ? 'init' : 'join');
        }
        trials++;
        for (const c of cleanup.splice(0).reverse()) await c();
      }
      expect(trials).toBe(TRIALS);
      console.log(`claim power cut: N=${n}: ${trials} trials, exactly one init in each`);
    });
  }
});
