import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LogSink, targetForDescriptor, type LogTarget } from '../../src/logging/log-sink.ts';

/** A target whose writes the test answers one at a time: what was asked, and its callback. */
class HeldTarget implements LogTarget {
  readonly asked: Array<{ text: string; done: (err: NodeJS.ErrnoException | null) => void }> = [];
  written = '';
  write(chunk: Buffer, done: (err: NodeJS.ErrnoException | null) => void): void {
    this.asked.push({ text: chunk.toString(), done });
  }
  /** The oldest write succeeds. */
  succeed(): void {
    const w = this.asked.shift()!;
    this.written += w.text;
    w.done(null);
  }
  /** The oldest write fails with `code`. */
  fail(code: string): void {
    this.asked.shift()!.done(Object.assign(new Error(code), { code }));
  }
}

const line = (msg: string) => `${JSON.stringify({ level: 30, msg })}\n`;
const messages = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const LOST = 'log lines were lost: they could not be written';

describe('log sink', () => {
  it('writes lines in order, one write at a time, the lines that came meanwhile together', () => {
    const target = new HeldTarget();
    const sink = new LogSink({ target });
    sink.write(line('a'));
    sink.write(line('b'));
    sink.write(line('c'));
    expect(target.asked.map((w) => w.text)).toEqual([line('a')]);
    target.succeed();
    expect(target.asked.map((w) => w.text)).toEqual([line('b') + line('c')]);
    target.succeed();
    expect(target.asked).toHaveLength(0);
    expect(messages(target.written).map((m) => m.msg)).toEqual(['a', 'b', 'c']);
  });

  it('a write that fails (a full disk, a reader gone) drops its lines and never throws; the next line written says how many and why', () => {
    const target = new HeldTarget();
    const sink = new LogSink({ target });
    sink.write(line('one'));
    sink.write(line('two'));
    sink.write(line('three'));
    target.fail('ENOSPC');
    // The next chunk is tried, not the same bytes for ever.
    target.fail('ENOSPC');
    expect(sink.lostLines).toBe(3);
    expect(target.asked).toHaveLength(0);
    sink.write(line('four'));
    // This chunk carries the count; when it fails too, the count is kept, not counted as one line.
    target.fail('EPIPE');
    expect(sink.lostLines).toBe(4);
    sink.write(line('five'));
    target.succeed();
    expect(messages(target.written)).toEqual([expect.objectContaining({ level: 40, lost: 4, reason: 'EPIPE', msg: LOST }), expect.objectContaining({ msg: 'five' })]);
    expect(sink.lostLines).toBe(0);
  });

  it('a reader that stalls holds at most the bound: lines past it are dropped and counted, nothing before them', () => {
    const target = new HeldTarget();
    const sink = new LogSink({ target, maxQueuedChars: 3 * line('q1').length });
    sink.write(line('first'));
    for (const m of ['q1', 'q2', 'q3', 'q4', 'q5']) sink.write(line(m));
    expect(sink.lostLines).toBe(2);
    target.succeed();
    target.succeed();
    const out = messages(target.written);
    expect(out.map((m) => m.msg)).toEqual(['first', LOST, 'q1', 'q2', 'q3']);
    expect(out[1]).toMatchObject({ lost: 2, reason: 'the log reader is not keeping up' });
  });

  it('flush calls back once what was queued is written or dropped', async () => {
    const target = new HeldTarget();
    const sink = new LogSink({ target });
    let flushed = false;
    sink.flush(() => (flushed = true));
    await new Promise((r) => process.nextTick(r));
    expect(flushed).toBe(true);
    flushed = false;
    sink.write(line('a'));
    sink.write(line('b'));
    sink.flush(() => (flushed = true));
    target.succeed();
    expect(flushed).toBe(false);
    target.fail('EPIPE');
    expect(flushed).toBe(true);
  });

  it('writes to a real file through the thread pool, in order', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-log-')), 'log');
    const fd = openSync(file, 'w');
    const sink = new LogSink({ target: targetForDescriptor(fd) });
    for (let i = 0; i < 100; i++) sink.write(line(`line ${i}`));
    await new Promise<void>((resolve) => sink.flush(() => resolve()));
    closeSync(fd);
    expect(messages(readFileSync(file, 'utf8')).map((m) => m.msg)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
  });

  it('on /dev/full, drops every line with ENOSPC and carries on', async () => {
    const fd = openSync('/dev/full', 'w');
    const sink = new LogSink({ target: targetForDescriptor(fd) });
    for (let i = 0; i < 10; i++) sink.write(line(`line ${i}`));
    await new Promise<void>((resolve) => sink.flush(() => resolve()));
    closeSync(fd);
    expect(sink.lostLines).toBe(10);
  });
});
