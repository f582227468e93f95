// The lock's rules without SQLite: who may elect, when Bootstrap may be (re)sent, and that nothing
// after bootstrap-sent can hand the cluster to another node.

import { describe, expect, it } from 'vitest';
import {
  chooseCandidate,
  claim,
  ClaimRefused,
  claimResend,
  classifyBootstrapError,
  deferResend,
  elect,
  markBootstrapped,
  markSent,
  requestRecovery,
  resetLock,
  unclaimedLock,
  type Lock,
  type Outcome,
} from '../../src/bootstrap/lock.ts';

const T0 = 1_000_000;
const ok = (o: Outcome): Lock => {
  if (!o.ok) throw new Error(`refused: ${o.why}`);
  return o.lock;
};
const lease = 30_000;
const electA = (l: Lock, now = T0, owner = 'p1') => elect(l, { candidate: 'aa', addr: '192.0.2.11', owner, now, leaseMs: lease });
const electB = (l: Lock, now = T0, owner = 'p2') => elect(l, { candidate: 'bb', addr: '192.0.2.12', owner, now, leaseMs: lease });

describe('election', () => {
  it('takes an unclaimed lock with epoch 1 and a lease', () => {
    const l = ok(electA(unclaimedLock('c', T0)));
    expect(l).toMatchObject({ state: 'elected', holder: 'aa', epoch: 1, owner: 'p1', leaseExpiresAt: T0 + lease });
  });

  it('refuses a second process while the lease runs, allows it after, with a new epoch', () => {
    const l = ok(electA(unclaimedLock('c', T0)));
    expect(electB(l, T0 + lease - 1)).toMatchObject({ ok: false, why: expect.stringContaining('aa is elected') });
    expect(ok(electB(l, T0 + lease))).toMatchObject({ holder: 'bb', epoch: 2, owner: 'p2' });
  });

  it('lets the lease owner re-elect (its choice stopped answering before the send)', () => {
    const l = ok(electA(unclaimedLock('c', T0)));
    expect(ok(electB(l, T0 + 1, 'p1'))).toMatchObject({ holder: 'bb', epoch: 2 });
  });

  it('never elects once bootstrap-sent or bootstrapped', () => {
    const sent = ok(markSent(ok(electA(unclaimedLock('c', T0))), { epoch: 1, owner: 'p1', now: T0, retryAfterMs: 1000 }));
    expect(electB(sent, T0 + 10 * lease, 'p1').ok).toBe(false);
    const done = ok(markBootstrapped(sent, { now: T0, evidence: 'x', by: 'bb', addr: null }));
    expect(electB(done, T0 + 10 * lease, 'p1').ok).toBe(false);
  });
});

describe('sending', () => {
  it('marks sent only for the current epoch and owner (fencing)', () => {
    const first = ok(electA(unclaimedLock('c', T0)));
    const second = ok(electB(first, T0 + lease));
    expect(markSent(second, { epoch: 1, owner: 'p1', now: T0 + lease, retryAfterMs: 1000 })).toMatchObject({ ok: false, why: expect.stringContaining('stale') });
    expect(ok(markSent(second, { epoch: 2, owner: 'p2', now: T0 + lease, retryAfterMs: 1000 }))).toMatchObject({ state: 'bootstrap-sent', holder: 'bb', retryAt: T0 + lease + 1000 });
  });

  it('allows a re-send to the same holder only when the retry time has come, once per interval', () => {
    const sent = ok(markSent(ok(electA(unclaimedLock('c', T0))), { epoch: 1, owner: 'p1', now: T0, retryAfterMs: 1000 }));
    expect(claimResend(sent, { now: T0 + 999, retryAfterMs: 1000 }).ok).toBe(false);
    const again = ok(claimResend(sent, { now: T0 + 1000, retryAfterMs: 1000 }));
    expect(again).toMatchObject({ holder: 'aa', epoch: 1, attempts: 2, retryAt: T0 + 2000 });
    expect(claimResend(again, { now: T0 + 1000, retryAfterMs: 1000 }).ok).toBe(false);
  });

  it('brings the retry forward when the holder said not yet', () => {
    const sent = ok(markSent(ok(electA(unclaimedLock('c', T0))), { epoch: 1, owner: 'p1', now: T0, retryAfterMs: 100_000 }));
    expect(ok(deferResend(sent, { epoch: 1, now: T0, retryAt: T0 + 50, why: 'not yet' })).retryAt).toBe(T0 + 50);
    expect(deferResend(sent, { epoch: 0, now: T0, retryAt: T0 + 50, why: 'not yet' }).ok).toBe(false);
  });
});

describe('bootstrapped and reset', () => {
  it('keeps the holder that was sent Bootstrap, whoever reported the members', () => {
    const sent = ok(markSent(ok(electA(unclaimedLock('c', T0))), { epoch: 1, owner: 'p1', now: T0, retryAfterMs: 1 }));
    expect(ok(markBootstrapped(sent, { now: T0, evidence: 'bb lists 2 members', by: 'bb', addr: '192.0.2.12' }))).toMatchObject({ state: 'bootstrapped', holder: 'aa' });
  });

  it('records the reporting node when Genesis finds a cluster it never bootstrapped', () => {
    const found = markBootstrapped(unclaimedLock('c', T0), { now: T0, evidence: 'cc lists 3 members', by: 'cc', addr: '192.0.2.13' });
    expect(found).toMatchObject({ ok: true, note: expect.stringContaining('found an existing cluster'), lock: { holder: 'cc', state: 'bootstrapped' } });
  });

  it('reset keeps the epoch, so the next election fences everything before it', () => {
    const done = ok(markBootstrapped(ok(electA(unclaimedLock('c', T0))), { now: T0, evidence: 'x', by: 'aa', addr: null }));
    const reset = ok(resetLock(done, { now: T0 }));
    expect(reset).toMatchObject({ state: 'unclaimed', holder: null, epoch: 1 });
    expect(ok(electB(reset))).toMatchObject({ epoch: 2 });
    expect(resetLock(reset, { now: T0 }).ok).toBe(false);
  });
});

describe('claims', () => {
  it('tells the first claimant to init, itself again init, everyone else join', () => {
    const first = claim(unclaimedLock('c', T0), { mac: 'aa', addr: '192.0.2.11', now: T0 });
    expect(first.answer).toEqual({ decision: 'init', leader: { mac: 'aa', ip: '192.0.2.11' }, epoch: 1 });
    const l = ok(first.outcome!);
    expect(l.state).toBe('bootstrap-sent');
    expect(claim(l, { mac: 'aa', addr: '192.0.2.11', now: T0 })).toEqual({ outcome: null, answer: first.answer });
    expect(claim(l, { mac: 'bb', addr: '192.0.2.12', now: T0 + 10 * lease }).answer).toEqual({ decision: 'join', leader: { mac: 'aa', ip: '192.0.2.11' }, epoch: 1 });
  });

  it('joins a live Talos election instead of taking it', () => {
    const l = ok(electA(unclaimedLock('c', T0)));
    expect(claim(l, { mac: 'bb', addr: null, now: T0 + 1 }).answer.decision).toBe('join');
  });
});

describe('choosing and classifying', () => {
  const c = (mac: string, reachableSince: number, preferred = false) => ({ mac, addr: '192.0.2.1', preferred, reachableSince });

  it('prefers the operator’s node, then the first reachable, then the lowest MAC', () => {
    expect(chooseCandidate([c('bb', 5), c('aa', 9, true)], true)).toMatchObject({ mac: 'aa' });
    expect(chooseCandidate([c('bb', 5), c('aa', 9)], false)).toMatchObject({ mac: 'bb' });
    expect(chooseCandidate([c('bb', 5), c('aa', 5)], false)).toMatchObject({ mac: 'aa' });
  });

  it('waits for a chosen node that does not answer rather than picking another', () => {
    expect(chooseCandidate([c('bb', 5)], true)).toEqual({ waitingFor: 'preferred' });
    expect(chooseCandidate([], false)).toBeNull();
  });

  it('reads Talos Bootstrap errors', () => {
    expect(classifyBootstrapError(6, 'etcd data directory is not empty')).toBe('already-bootstrapped');
    expect(classifyBootstrapError(9, 'etcd data directory is not empty')).toBe('already-bootstrapped');
    expect(classifyBootstrapError(9, 'time is not in sync yet')).toBe('not-yet');
    expect(classifyBootstrapError(7, 'not authorized')).toBe('not-sent');
    expect(classifyBootstrapError(14, 'connection reset')).toBe('unknown');
    expect(classifyBootstrapError(4, 'deadline exceeded')).toBe('unknown');
  });
});

describe('recovery', () => {
  const plan = { snapshot: 'etcd-c-20261201T000000Z', sha256: 'ab'.repeat(32), size: 4128, requestedAt: T0, requestedBy: 'api:cli' };
  const bootstrapped = () => ok(markBootstrapped(unclaimedLock('c', T0), { now: T0, evidence: 'aa lists 3', by: 'aa', addr: '192.0.2.11' }));
  const recover = (l: Lock, now = T0) => requestRecovery(l, { plan, now });

  it('starts from a bootstrapped lock with a new epoch, no holder, and the plan', () => {
    const before = bootstrapped();
    const l = ok(recover(before));
    expect(l).toMatchObject({ state: 'recovering', holder: null, epoch: before.epoch + 1, recovery: plan, attempts: 0 });
    // A Genesis that lost everything but the snapshot: from unclaimed too.
    expect(ok(recover(unclaimedLock('c', T0))).state).toBe('recovering');
  });

  it('never runs two, and never beside a bootstrap in flight', () => {
    const r = ok(recover(bootstrapped()));
    expect(recover(r)).toMatchObject({ ok: false, why: expect.stringContaining('already under way') });
    const sent = ok(markSent(ok(electA(r)), { epoch: r.epoch + 1, owner: 'p1', now: T0, retryAfterMs: 1000 }));
    expect(sent).toMatchObject({ state: 'bootstrap-sent', recovery: plan });
    expect(recover(sent)).toMatchObject({ ok: false, why: expect.stringContaining('already under way') });
    const firstBoot = ok(electA(unclaimedLock('c', T0)));
    expect(recover(firstBoot)).toMatchObject({ ok: false, why: expect.stringContaining('a bootstrap is under way') });
  });

  it('elects under a lease like the first bootstrap, keeping the plan; the holder is fixed once sent', () => {
    const r = ok(recover(bootstrapped()));
    const a = ok(electA(r));
    expect(a).toMatchObject({ state: 'recovering', holder: 'aa', epoch: r.epoch + 1, recovery: plan });
    expect(electB(a, T0 + lease - 1)).toMatchObject({ ok: false });
    const b = ok(electB(a, T0 + lease));
    expect(b).toMatchObject({ state: 'recovering', holder: 'bb', epoch: r.epoch + 2 });
    // The stale owner's send is fenced off.
    expect(markSent(b, { epoch: a.epoch, owner: 'p1', now: T0 + lease, retryAfterMs: 1000 })).toMatchObject({ ok: false });
    const sent = ok(markSent(b, { epoch: b.epoch, owner: 'p2', now: T0 + lease, retryAfterMs: 1000 }));
    expect(electA(sent, T0 + 10 * lease)).toMatchObject({ ok: false });
    // Nothing to send before someone is elected.
    expect(markSent(r, { epoch: r.epoch, owner: 'p1', now: T0, retryAfterMs: 1000 })).toMatchObject({ ok: false });
  });

  it('ends bootstrapped with the plan cleared; members seen before the send abandon it', () => {
    const r = ok(recover(bootstrapped()));
    const sent = ok(markSent(ok(electA(r)), { epoch: r.epoch + 1, owner: 'p1', now: T0, retryAfterMs: 1000 }));
    const done = markBootstrapped(sent, { now: T0, evidence: 'aa lists 1', by: 'aa', addr: null });
    expect(done).toMatchObject({ ok: true, lock: { state: 'bootstrapped', holder: 'aa', recovery: null }, note: `recovered from ${plan.snapshot}: aa lists 1` });
    const abandoned = markBootstrapped(ok(electA(r)), { now: T0, evidence: 'bb lists 3', by: 'bb', addr: '192.0.2.12' });
    expect(abandoned).toMatchObject({ ok: true, lock: { state: 'bootstrapped', holder: 'bb', recovery: null } });
    expect((abandoned as { note: string }).note).toMatch(/^recovery from .* abandoned before anything was sent/);
  });

  it('turns claims away while it runs, and an operator reset clears it', () => {
    const r = ok(recover(bootstrapped()));
    expect(() => claim(r, { mac: 'cc', addr: null, now: T0 })).toThrow(ClaimRefused);
    expect(ok(resetLock(r, { now: T0 }))).toMatchObject({ state: 'unclaimed', recovery: null, epoch: r.epoch });
  });
});
