// The time slices queued boot work runs in (scheduling/time-slices.ts), with a hand-driven clock and a
// hand-driven "after the next poll": nothing runs where it was queued, parts run first come first
// served, a slice stops once its time is used (after at least one part), and one part's failure is
// its own.

import { describe, expect, it } from 'vitest';
import { TimeSlices } from '../../src/scheduling/time-slices.ts';

/** A TimeSlices whose clock moves only when a part says so, and whose next turns the test runs. */
function driven(sliceMs: number) {
  let clock = 0;
  const turns: Array<() => void> = [];
  const slices = new TimeSlices({ sliceMs, now: () => clock, later: (fn) => turns.push(fn) });
  return {
    slices,
    turns,
    /** A part that takes `ms` of the clock and notes that it ran. */
    costing: (ms: number, ran: string[], name: string) => () => {
      clock += ms;
      ran.push(name);
      return name;
    },
    /** Runs the next turn the queue asked for. */
    nextTurn: () => turns.shift()!(),
  };
}

describe('TimeSlices', () => {
  it('runs nothing where it is queued: the parts wait for the next turn, in arrival order', async () => {
    const d = driven(10);
    const ran: string[] = [];
    const answers = ['a', 'b', 'c'].map((name) => d.slices.run(d.costing(1, ran, name)));
    expect(ran).toEqual([]);
    expect(d.slices.waiting).toBe(3);
    // One turn asked for, however many parts were queued.
    expect(d.turns).toHaveLength(1);
    d.nextTurn();
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(await Promise.all(answers)).toEqual(['a', 'b', 'c']);
    expect(d.slices.waiting).toBe(0);
    expect(d.turns).toHaveLength(0);
  });

  it('stops a slice once its time is used and leaves the rest to the next turn', async () => {
    const d = driven(10);
    const ran: string[] = [];
    for (let i = 0; i < 7; i++) void d.slices.run(d.costing(4, ran, `p${i}`));
    d.nextTurn();
    // 4 + 4 < 10, 12 ≥ 10: three parts, then the event loop polls.
    expect(ran).toEqual(['p0', 'p1', 'p2']);
    expect(d.slices.waiting).toBe(4);
    expect(d.turns).toHaveLength(1);
    d.nextTurn();
    expect(ran).toHaveLength(6);
    d.nextTurn();
    expect(ran).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    expect(d.turns).toHaveLength(0);
  });

  it('runs at least one part per turn, however long it takes', () => {
    const d = driven(10);
    const ran: string[] = [];
    void d.slices.run(d.costing(50, ran, 'long'));
    void d.slices.run(d.costing(1, ran, 'short'));
    d.nextTurn();
    expect(ran).toEqual(['long']);
    d.nextTurn();
    expect(ran).toEqual(['long', 'short']);
  });

  it('a part that throws or rejects fails alone; a promise a part returns is followed', async () => {
    const d = driven(10);
    const thrown = d.slices.run(() => {
      throw new Error('no such machine');
    });
    const rejected = d.slices.run(() => Promise.reject(new Error('commit failed')));
    const followed = d.slices.run(() => Promise.resolve('committed'));
    const plain = d.slices.run(() => 'script');
    d.nextTurn();
    await expect(thrown).rejects.toThrow('no such machine');
    await expect(rejected).rejects.toThrow('commit failed');
    expect(await followed).toBe('committed');
    expect(await plain).toBe('script');
  });

  it('a part queued while a slice runs waits for a later turn, and a long queue keeps its order', async () => {
    const d = driven(1_000_000);
    const ran: string[] = [];
    void d.slices.run(() => {
      ran.push('first');
      void d.slices.run(() => ran.push('queued by first'));
    });
    d.nextTurn();
    expect(ran).toEqual(['first']);
    d.nextTurn();
    expect(ran).toEqual(['first', 'queued by first']);
    // More parts than the queue keeps before it drops the ones it ran, over several slices.
    const order: number[] = [];
    const slim = driven(5);
    for (let i = 0; i < 3000; i++) void slim.slices.run(slim.costing(1, [], '')).then(() => order.push(i));
    while (slim.turns.length) slim.nextTurn();
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });
});
