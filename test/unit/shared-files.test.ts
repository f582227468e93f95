// The bookkeeping of files held in memory for many downloads (src/bulk/shared-files.ts): when a
// file is read, by whom it is used, when it is let go, and the limits on what is held.

import { describe, expect, it } from 'vitest';
import { SharedFiles, type FileIdentity, type SharedFilesLimits } from '../../src/bulk/shared-files.ts';

const LIMITS: SharedFilesLimits = { shareFrom: 3, maxFileBytes: 100, maxTotalBytes: 150, keepMs: 1000 };

function file(ino: number, size = 80): FileIdentity {
  return { dev: 1, ino, size, mtimeMs: 1_700_000_000_000 };
}

/** A load the test resolves by hand, counting its calls. */
function loader(content: Buffer) {
  const calls: Array<() => void> = [];
  const load = () =>
    new Promise<Buffer>((resolve) => {
      calls.push(() => resolve(content));
    });
  return { load, calls };
}

/** Lets the load's settlement run. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SharedFiles', () => {
  it('reads a file once enough downloads of it run, and hands its content to every download from then on', async () => {
    let now = 0;
    const shared = new SharedFiles(LIMITS, () => now);
    const f = file(1);
    const { load, calls } = loader(Buffer.alloc(80, 7));
    shared.enter(f, load);
    shared.enter(f, load);
    expect(calls).toHaveLength(0);
    expect(shared.held(f)).toBeUndefined();
    shared.enter(f, load);
    expect(calls).toHaveLength(1);
    // Loading: the downloads stream meanwhile.
    expect(shared.held(f)).toBeUndefined();
    expect(shared.heldBytesNow).toBe(80);
    calls[0]!();
    await settled();
    expect(shared.held(f)).toEqual(Buffer.alloc(80, 7));
    shared.enter(f, load);
    expect(calls).toHaveLength(1);
    for (let i = 0; i < 4; i++) shared.leave(f);
    // Kept for the next wave of a storm, then let go.
    now += 999;
    shared.forgetIdle();
    expect(shared.held(f)).toBeDefined();
    shared.enter(f, load);
    shared.leave(f);
    now += 1000;
    shared.forgetIdle();
    expect(shared.held(f)).toBeUndefined();
    expect(shared.heldBytesNow).toBe(0);
  });

  it('streams files larger than maxFileBytes, and holds no more than maxTotalBytes in all', async () => {
    const shared = new SharedFiles(LIMITS);
    const big = file(1, 101);
    const bigLoad = loader(Buffer.alloc(101));
    for (let i = 0; i < 5; i++) shared.enter(big, bigLoad.load);
    expect(bigLoad.calls).toHaveLength(0);
    const a = file(2, 80);
    const b = file(3, 80);
    const aLoad = loader(Buffer.alloc(80, 1));
    const bLoad = loader(Buffer.alloc(80, 2));
    for (let i = 0; i < 3; i++) shared.enter(a, aLoad.load);
    for (let i = 0; i < 3; i++) shared.enter(b, bLoad.load);
    expect(aLoad.calls).toHaveLength(1);
    // 80 + 80 is over 150: the second file streams.
    expect(bLoad.calls).toHaveLength(0);
    expect(shared.heldBytesNow).toBe(80);
  });

  it('a file that cannot be read whole is streamed, and not read again while its downloads run', async () => {
    const shared = new SharedFiles(LIMITS);
    const f = file(1);
    let calls = 0;
    const short = () => {
      calls++;
      return Promise.resolve(Buffer.alloc(40));
    };
    for (let i = 0; i < 3; i++) shared.enter(f, short);
    await settled();
    expect(shared.held(f)).toBeUndefined();
    expect(shared.heldBytesNow).toBe(0);
    for (let i = 0; i < 3; i++) shared.enter(f, short);
    expect(calls).toBe(1);
    const g = file(2);
    for (let i = 0; i < 3; i++) shared.enter(g, () => Promise.reject(new Error('EIO')));
    await settled();
    expect(shared.held(g)).toBeUndefined();
    expect(shared.heldBytesNow).toBe(0);
  });

  it('a replaced file is another file: its downloads never get the old content', async () => {
    const shared = new SharedFiles(LIMITS);
    const before = file(1);
    const { load, calls } = loader(Buffer.alloc(80, 1));
    for (let i = 0; i < 3; i++) shared.enter(before, load);
    calls[0]!();
    await settled();
    const after = { ...before, ino: 2 };
    const touched = { ...before, mtimeMs: before.mtimeMs + 1 };
    expect(shared.held(after)).toBeUndefined();
    expect(shared.held(touched)).toBeUndefined();
  });
});
