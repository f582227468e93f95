import { closeSync, openSync, readFileSync, type write as fsWrite, type writeSync as fsWriteSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LogSink } from '../../src/logging/log-sink.ts';

type Callback = (err: NodeJS.ErrnoException | null, written: number) => void;

/** A descriptor whose writes the test answers one at a time: what was asked, and its callback. */
class HeldFs {
  readonly asked: Array<{ text: string; answer: Callback }> = [];
  written = '';
  syncCalls = 0;
  syncError: string | undefined;
  write = ((_fd: number, buffer: Buffer, offset: number, length: number, _position: null, cb: Callback) => {
    this.asked.push({ text: buffer.subarray(offset, offset + length).toString(), answer: cb });
  }) as unknown as typeof fsWrite;
  writeSync = ((_fd: number, buffer: Buffer, offset: number, length: number) => {
    this.syncCalls++;
    if (this.syncError) throw Object.assign(new Error(this.syncError), { code: this.syncError });
    this.written += buffer.subarray(offset, offset + length).toString();
    return length;
  }) as unknown as typeof fsWriteSync;
  /** The oldest write succeeds (all of it, or `bytes`). */
  succeed(bytes?: number): void {
    const w = this.asked.shift()!;
    const n = bytes ?? Buffer.byteLength(w.text);
    this.written += Buffer.from(w.text).subarray(0, n).toString();
    w.answer(null, n);
  }
  /** The oldest write fails with `code`. */
  fail(code: string): void {
    this.asked.shift()!.answer(Object.assign(new Error(code), { code }), 0);
  }
}

const line = (msg: string) => `${JSON.stringify({ level: 30, msg })}\n`;
const messages = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('log sink', () => {
  it('writes lines in order, one write at a time, the lines that came meanwhile together', () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs });
    sink.write(line('a'));
    sink.write(line('b'));
    sink.write(line('c'));
    expect(fs.asked.map((w) => w.text)).toEqual([line('a')]);
    fs.succeed();
    expect(fs.asked.map((w) => w.text)).toEqual([line('b') + line('c')]);
    fs.succeed();
    expect(messages(fs.written).map((m) => m.msg)).toEqual(['a', 'b', 'c']);
  });

  it('writes the rest of a chunk the descriptor took only part of', () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs });
    sink.write(line('partial'));
    fs.succeed(5);
    expect(fs.asked).toHaveLength(1);
    fs.succeed();
    expect(messages(fs.written).map((m) => m.msg)).toEqual(['partial']);
  });

  it('a write that fails (a full disk, a reader gone) drops its lines and never throws; the next line written says how many and why', () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs });
    sink.write(line('one'));
    sink.write(line('two'));
    sink.write(line('three'));
    fs.fail('ENOSPC');
    // The retry is the next chunk, not the same bytes for ever.
    fs.fail('ENOSPC');
    expect(sink.lostLines).toBe(3);
    expect(fs.asked).toHaveLength(0);
    sink.write(line('four'));
    // This chunk carries the count; when it fails too, the count is kept, not counted as one line.
    fs.fail('ENOSPC');
    expect(sink.lostLines).toBe(4);
    sink.write(line('five'));
    fs.succeed();
    const out = messages(fs.written);
    expect(out).toEqual([expect.objectContaining({ level: 40, lost: 4, reason: 'ENOSPC', msg: 'log lines were lost: they could not be written' }), expect.objectContaining({ msg: 'five' })]);
    expect(sink.lostLines).toBe(0);
  });

  it('a full pipe (EAGAIN) is tried again with the same bytes, nothing lost; lines past the bound are dropped and counted', async () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs, retryMs: 1, maxQueuedChars: 3 * line('q1').length });
    sink.write(line('first'));
    fs.fail('EAGAIN');
    for (const m of ['q1', 'q2', 'q3', 'q4', 'q5']) sink.write(line(m));
    await new Promise<void>((resolve) => {
      const check = () => (fs.asked.length ? resolve() : setTimeout(check, 1));
      check();
    });
    expect(fs.asked[0]!.text).toBe(line('first'));
    fs.succeed();
    fs.succeed();
    const out = messages(fs.written);
    expect(out.map((m) => m.msg)).toEqual(['first', 'log lines were lost: they could not be written', 'q1', 'q2', 'q3']);
    expect(out[1]).toMatchObject({ lost: 2, reason: 'the log reader is not keeping up' });
  });

  it('flush calls back once what was queued is written or dropped', async () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs });
    let flushed = false;
    sink.flush(() => (flushed = true));
    await new Promise((r) => process.nextTick(r));
    expect(flushed).toBe(true);
    flushed = false;
    sink.write(line('a'));
    sink.write(line('b'));
    sink.flush(() => (flushed = true));
    fs.succeed();
    expect(flushed).toBe(false);
    fs.fail('EPIPE');
    expect(flushed).toBe(true);
  });

  it('at exit, the queued lines get one synchronous attempt: a failure is neither retried nor thrown', () => {
    const fs = new HeldFs();
    const sink = new LogSink({ fd: 99, fs });
    sink.write(line('in flight'));
    sink.write(line('queued'));
    fs.syncError = 'EPIPE';
    expect(() => sink.flushSync()).not.toThrow();
    expect(fs.syncCalls).toBe(1);
    sink.write(line('later'));
    fs.syncError = undefined;
    sink.flushSync();
    expect(messages(fs.written).map((m) => m.msg)).toEqual(['later']);
  });

  it('writes to a real file', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-log-')), 'log');
    const fd = openSync(file, 'w');
    const sink = new LogSink({ fd });
    for (let i = 0; i < 100; i++) sink.write(line(`line ${i}`));
    await new Promise<void>((resolve) => sink.flush(() => resolve()));
    closeSync(fd);
    expect(messages(readFileSync(file, 'utf8')).map((m) => m.msg)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
  });
});
