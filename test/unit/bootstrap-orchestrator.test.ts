// The orchestrator's decisions without sockets or SQLite: control planes are FakeTalosNodes behind
// its dial() interface, the lock is MemoryLocks (the same pure rules), time is a number the test
// moves, and each round is run by hand. The crash tests (bootstrap-crash.test.ts) still cover what
// only a real process and file can show.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/domain/node.ts';
import { BootstrapOrchestrator, type BootstrapSettings } from '../../src/bootstrap/orchestrator.ts';
import { elect } from '../../src/bootstrap/lock.ts';
import { nextStep, resendDelay, type ControlPlaneProbe } from '../../src/bootstrap/next-step.ts';
import { unclaimedLock } from '../../src/bootstrap/lock.ts';
import { FixedInventory } from '../fakes/inventory.ts';
import { MemoryLocks } from '../fakes/lock-store.ts';
import { FakeTalosNodes } from '../fakes/talos-nodes.ts';

const CLUSTER = 'lab';
const A = { mac: '52:54:00:00:00:01', ip: '192.0.2.11' };
const B = { mac: '52:54:00:00:00:02', ip: '192.0.2.12' };
const C = { mac: '52:54:00:00:00:03', ip: '192.0.2.13' };

function lab(opts: { settleMs?: number; planes?: Array<{ mac: string; ip: string; over?: Partial<Node> }> } = {}) {
  let t = Date.parse('2026-12-02T10:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const planes: Array<{ mac: string; ip: string; over?: Partial<Node> }> = opts.planes ?? [A, B];
  const inventory = new FixedInventory(planes.map((p) => ({ mac: p.mac, role: 'controlplane', state: 'installing', lastIp: p.ip, ...p.over })));
  const talos = new FakeTalosNodes();
  for (const p of planes) talos.add(p.ip);
  const locks = new MemoryLocks(clock.now);
  const settings: BootstrapSettings = { enabled: true, apiPort: 50000, pollMs: 1000, settleMs: opts.settleMs ?? 0, leaseMs: 30_000, retryAfterMs: 300_000, rpcTimeoutMs: 1000 };
  const orchestrator = new BootstrapOrchestrator({
    inventory,
    locks,
    cluster: CLUSTER,
    credentials: () => Promise.reject(new Error('unit tests dial fakes')),
    nodes: talos,
    settings,
    log: pino({ level: 'silent' }),
    now: clock.now,
  });
  const lock = () => locks.get(CLUSTER);
  const bootstraps = () => talos.bootstraps().map((c) => c.addr);
  return { clock, inventory, talos, locks, orchestrator, lock, bootstraps, settings };
}

describe('bootstrap orchestrator (fakes, no sockets, no SQLite)', () => {
  it('settle: elects only once the settle time has passed, the control plane heard first, ties broken by MAC', async () => {
    const l = lab({ settleMs: 15_000, planes: [C, B, A] });
    await l.orchestrator.round();
    expect(l.lock().state).toBe('unclaimed');
    expect(l.orchestrator.status().orchestrator.waiting).toMatch(/settle time/);
    l.clock.advance(14_999);
    await l.orchestrator.round();
    expect(l.bootstraps()).toEqual([]);
    l.clock.advance(1);
    await l.orchestrator.round();
    expect(l.lock()).toMatchObject({ state: 'bootstrap-sent', holder: A.mac, epoch: 1 });
    expect(l.bootstraps()).toEqual([A.ip]);
    expect(l.inventory.events.filter((e) => e.mac === A.mac).map((e) => e.type)).toEqual(['bootstrap-elected', 'bootstrap-sent']);
  });

  it('settle counts from when each node was first heard: a node heard later waits for its own turn only if it is the earliest', async () => {
    const l = lab({ settleMs: 10_000, planes: [A, B] });
    l.talos.planes.get(A.ip)!.reachable = false;
    await l.orchestrator.round();
    l.clock.advance(5_000);
    l.talos.planes.get(A.ip)!.reachable = true;
    await l.orchestrator.round(); // A first heard now, B 5 s ago
    l.clock.advance(5_000);
    await l.orchestrator.round(); // B has settled: B, heard longest, is chosen
    expect(l.bootstraps()).toEqual([B.ip]);
  });

  it('evidence: a control plane with etcd members means the cluster exists; nothing is sent, then nothing is asked', async () => {
    const l = lab();
    Object.assign(l.talos.planes.get(B.ip)!, { etcd: 'Running', members: 3 });
    await l.orchestrator.round();
    expect(l.lock()).toMatchObject({ state: 'bootstrapped', holder: B.mac });
    expect(l.bootstraps()).toEqual([]);
    expect(l.inventory.events.map((e) => [e.mac, e.type])).toEqual([[B.mac, 'bootstrapped']]);
    const asked = l.talos.calls.length;
    await l.orchestrator.round();
    expect(l.talos.calls.length).toBe(asked);
    expect(l.talos.closed).toBeGreaterThan(0);
  });

  it('evidence: etcd running without a member list counts too, even while another process holds the election', async () => {
    const l = lab();
    l.locks.apply(CLUSTER, 'other', (lk, now) => elect(lk, { candidate: A.mac, addr: A.ip, owner: 'another-process', now, leaseMs: 60_000 }));
    l.talos.planes.get(A.ip)!.etcd = 'Running';
    await l.orchestrator.round();
    expect(l.lock().state).toBe('bootstrapped');
    expect(l.bootstraps()).toEqual([]);
  });

  it('backoff: a refusal that ran nothing is retried on the holder only, after a delay that doubles', async () => {
    const l = lab();
    l.talos.planes.get(A.ip)!.bootstrapErrors = [1, 2, 3].map(() => ({ code: 9, message: 'time is not in sync yet' }));
    await l.orchestrator.round();
    const sentAt: number[] = [l.clock.now()];
    expect(l.lock().retryAt! - l.clock.now()).toBe(2000);
    for (let i = 0; i < 40; i++) {
      l.clock.advance(500);
      const before = l.bootstraps().length;
      await l.orchestrator.round();
      if (l.bootstraps().length > before) sentAt.push(l.clock.now());
    }
    expect(l.bootstraps()).toEqual([A.ip, A.ip, A.ip, A.ip]);
    expect(sentAt.slice(1).map((at, i) => at - sentAt[i]!)).toEqual([2000, 4000, 8000]);
    // The fourth was accepted: no deferral for it, and the lock waits for etcd members.
    expect(l.inventory.events.filter((e) => e.type === 'bootstrap-deferred')).toHaveLength(3);
    expect(l.lock()).toMatchObject({ state: 'bootstrap-sent', holder: A.mac, attempts: 4 });
  });

  it('resendDelay doubles from the poll interval and never passes the retry interval', () => {
    expect([1, 2, 3, 8, 9, 30].map((n) => resendDelay(n, 1000, 300_000))).toEqual([2000, 4000, 8000, 256_000, 256_000, 256_000]);
    expect(resendDelay(6, 1000, 50_000)).toBe(50_000);
  });

  it('re-election: an elected node that stops answering before Bootstrap gets nothing; the next round elects another, at a new epoch', async () => {
    const l = lab();
    l.talos.planes.get(A.ip)!.versionAnswers = [true, false]; // the probe, then the last look
    await l.orchestrator.round();
    expect(l.bootstraps()).toEqual([]);
    expect(l.lock()).toMatchObject({ state: 'elected', holder: A.mac, epoch: 1 });
    l.talos.planes.get(A.ip)!.reachable = false;
    await l.orchestrator.round();
    expect(l.lock()).toMatchObject({ state: 'bootstrap-sent', holder: B.mac, epoch: 2 });
    expect(l.bootstraps()).toEqual([B.ip]);
  });

  it('after a Bootstrap whose fate is unknown, no other node ever gets one; the holder gets it again once due', async () => {
    const l = lab();
    l.talos.planes.get(A.ip)!.bootstrapErrors = [{ code: 14, message: 'connection reset' }];
    await l.orchestrator.round();
    l.talos.planes.get(A.ip)!.reachable = false;
    for (let i = 0; i < 10; i++) {
      l.clock.advance(60_000);
      await l.orchestrator.round();
    }
    expect(l.bootstraps()).toEqual([A.ip]);
    expect(l.orchestrator.status().orchestrator.waiting).toMatch(/waiting for it \(or any control plane\)/);
    l.talos.planes.get(A.ip)!.reachable = true;
    await l.orchestrator.round();
    expect(l.bootstraps()).toEqual([A.ip, A.ip]);
  });

  it('AlreadyExists from the holder means the cluster exists', async () => {
    const l = lab();
    l.talos.planes.get(A.ip)!.bootstrapErrors = [{ code: 6, message: 'etcd data directory is not empty' }];
    await l.orchestrator.round();
    expect(l.lock()).toMatchObject({ state: 'bootstrapped', holder: A.mac });
  });

  it("the operator's choice is waited for, and only it is elected", async () => {
    const l = lab({ planes: [A, { ...B, over: { bootstrap: true } }] });
    l.talos.planes.get(B.ip)!.reachable = false;
    for (let i = 0; i < 3; i++) {
      l.clock.advance(1000);
      await l.orchestrator.round();
    }
    expect(l.lock().state).toBe('unclaimed');
    expect(l.orchestrator.status().orchestrator.waiting).toMatch(/marked bootstrap: true/);
    l.talos.planes.get(B.ip)!.reachable = true;
    await l.orchestrator.round();
    expect(l.bootstraps()).toEqual([B.ip]);
  });

  it("another process's election stands until its lease expires", async () => {
    const l = lab();
    l.locks.apply(CLUSTER, 'other', (lk, now) => elect(lk, { candidate: B.mac, addr: B.ip, owner: 'another-process', now, leaseMs: 30_000 }));
    await l.orchestrator.round();
    expect(l.orchestrator.status().orchestrator.waiting).toMatch(/another Genesis process holds the election/);
    l.clock.advance(30_000);
    await l.orchestrator.round();
    expect(l.lock()).toMatchObject({ state: 'bootstrap-sent', holder: A.mac, epoch: 2 });
    expect(l.bootstraps()).toEqual([A.ip]);
  });

  it('only control planes that fetched their config are elected', async () => {
    const l = lab({ planes: [{ ...A, over: { state: 'assigned' } }, B] });
    await l.orchestrator.round();
    expect(l.bootstraps()).toEqual([B.ip]);
  });
});

describe('nextStep (pure)', () => {
  const probe = (mac: string, over: Partial<ControlPlaneProbe> = {}): ControlPlaneProbe => ({
    mac,
    hostname: null,
    addr: `addr-${mac}`,
    configured: true,
    preferred: false,
    reachable: true,
    members: null,
    etcd: null,
    at: '',
    ...over,
  });
  const ctx = { now: 100_000, owner: 'me', settleMs: 10_000, reachableSince: new Map([['a', 80_000], ['b', 95_000]]), preferredKnown: false };
  const lock = unclaimedLock(CLUSTER, 0);

  it('waits with no probes, records evidence before anything else, and follows up only on the holder', () => {
    expect(nextStep(lock, [], ctx)).toEqual({ kind: 'wait', waiting: 'no control plane has fetched its machine config yet' });
    const sent = { ...lock, state: 'bootstrap-sent' as const, holder: 'a' };
    expect(nextStep(sent, [probe('a'), probe('b', { members: 1 })], ctx)).toMatchObject({ kind: 'record-evidence', witness: { mac: 'b' } });
    expect(nextStep(sent, [probe('a', { reachable: false }), probe('b')], ctx)).toMatchObject({ kind: 'wait' });
    expect(nextStep(sent, [probe('a'), probe('b')], ctx)).toMatchObject({ kind: 'follow-up', holder: { mac: 'a' } });
  });

  it('elects the settled control plane heard first', () => {
    expect(nextStep(lock, [probe('b'), probe('a')], ctx)).toEqual({ kind: 'elect', candidate: { mac: 'a', addr: 'addr-a' } });
    expect(nextStep(lock, [probe('b')], ctx)).toMatchObject({ kind: 'wait', waiting: expect.stringMatching(/settle time/) });
    expect(nextStep(lock, [probe('a', { configured: false })], ctx)).toMatchObject({ kind: 'wait', waiting: expect.stringMatching(/answer on the Talos API/) });
  });
});
