// etcd snapshots without a node: the retention rules, etcd's appended-hash check across chunk
// boundaries, and the snapshot files on a real directory (complete, failed, leftovers).

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { DataMessageError, decodeDataMessage } from '../../src/talos/data-message.ts';
import { snapshotsToPrune } from '../../src/backup/retention.ts';
import { SnapshotDigest } from '../../src/backup/etcd-integrity.ts';
import { SnapshotError, SnapshotStore, snapshotName } from '../../src/backup/snapshot-store.ts';

const day = (iso: string) => new Date(iso);

describe('retention', () => {
  const now = day('2026-12-01T12:00:00Z');
  const daily = Array.from({ length: 40 }, (_, i) => ({ name: `d${i}`, takenAt: new Date(now.getTime() - i * 86_400_000) }));

  it('keeps one per day for the last 30 days and prunes the older ones, oldest first', () => {
    expect(snapshotsToPrune(daily, { dailyDays: 30, keepNewest: 3 }, now)).toEqual(['d39', 'd38', 'd37', 'd36', 'd35', 'd34', 'd33', 'd32', 'd31', 'd30']);
  });

  it('keeps the newest of a day, plus the newest N whatever their day', () => {
    const sameDay = ['01', '03', '05', '07', '09'].map((h, i) => ({ name: `h${i}`, takenAt: day(`2026-12-01T${h}:00:00Z`) }));
    // h4 is the newest of the day; h3 and h2 are kept as the newest three; h0 and h1 go.
    expect(snapshotsToPrune(sameDay, { dailyDays: 30, keepNewest: 3 }, now)).toEqual(['h0', 'h1']);
    expect(snapshotsToPrune(sameDay, { dailyDays: 30, keepNewest: 1 }, now)).toEqual(['h0', 'h1', 'h2', 'h3']);
  });

  it('with no daily retention keeps only the newest N, and never prunes a snapshot dated in the future', () => {
    const future = { name: 'future', takenAt: day('2027-01-01T00:00:00Z') };
    expect(snapshotsToPrune([...daily.slice(0, 5), future], { dailyDays: 0, keepNewest: 2 }, now)).toEqual(['d4', 'd3', 'd2', 'd1']);
  });
});

/** A database of `pages` × 512 bytes with etcd's sha256 appended. */
function etcdSnapshot(pages: number): Buffer {
  const db = Buffer.alloc(pages * 512, 7);
  for (let i = 0; i < db.length; i++) db[i] = (i * 13) & 0xff;
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

function digestOf(buf: Buffer, chunk: number) {
  const d = new SnapshotDigest();
  for (let i = 0; i < buf.length; i += chunk) d.update(buf.subarray(i, i + chunk));
  return d.finish();
}

describe("etcd's appended hash", () => {
  const snap = etcdSnapshot(24);
  it.each([1, 7, 31, 32, 33, 512, 4096, 1 << 20])('is found and checked whatever the chunk size (%i bytes)', (chunk) => {
    expect(digestOf(snap, chunk)).toEqual({ sha256: createHash('sha256').update(snap).digest('hex'), etcd: 'hash-ok' });
  });
  it('a damaged database or a truncated stream is a mismatch; a raw database copy has no hash', () => {
    const damaged = Buffer.from(snap);
    damaged[100]! ^= 1;
    expect(digestOf(damaged, 4096).etcd).toBe('hash-mismatch');
    // Cut 512 bytes short: the size still ends in a 32-byte remainder, and the hash no longer matches.
    expect(digestOf(Buffer.concat([snap.subarray(0, snap.length - 544), snap.subarray(snap.length - 32)]), 4096).etcd).toBe('hash-mismatch');
    expect(digestOf(snap.subarray(0, 24 * 512), 4096).etcd).toBe('no-hash');
  });
});

async function* chunks(buf: Buffer, size: number, failAt?: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) {
    if (failAt !== undefined && i >= failAt) throw new Error('EtcdSnapshot: connection dropped');
    yield buf.subarray(i, i + size);
  }
}

const source = { mac: '52:54:00:00:40:01', hostname: 'cp-1', address: '192.0.2.2', talosVersion: 'v1.14.0' };

describe('snapshot files', () => {
  it('a complete snapshot lands as <name>.db and <name>.json (0600), listed newest first', async () => {
    const store = new SnapshotStore(path.join(mkdtempSync(path.join(tmpdir(), 'genesis-snap-')), 'backups'));
    const snap = etcdSnapshot(16);
    const a = await store.write({ cluster: 'lab', takenAt: day('2026-11-30T03:00:00Z'), source, chunks: chunks(snap, 1000) });
    const b = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T03:00:00Z'), source, chunks: chunks(snap, 1000) });
    expect(a).toMatchObject({ name: 'etcd-lab-20261130T030000Z', size: snap.length, etcdIntegrity: 'hash-ok', sha256: createHash('sha256').update(snap).digest('hex'), source });
    expect(readFileSync(store.databasePath(a.name)).equals(snap)).toBe(true);
    for (const ext of ['.db', '.json']) expect(statSync(path.join(store.dir, a.name + ext)).mode & 0o777).toBe(0o600);
    expect(statSync(store.dir).mode & 0o777).toBe(0o700);
    expect((await store.list()).map((r) => r.name)).toEqual([b.name, a.name]);
    expect(readdirSync(store.dir).sort()).toEqual([`${a.name}.db`, `${a.name}.json`, `${b.name}.db`, `${b.name}.json`]);
    expect(await store.verify(a.name)).toMatchObject({ ok: true, problems: [] });
    // Two in the same second get distinct names.
    const c = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T03:00:00Z'), source, chunks: chunks(snap, 1000) });
    expect(c.name).toBe('etcd-lab-20261201T030000Z-2');
  });

  it('a stream that fails midway or fails the etcd hash leaves nothing, and the earlier snapshot stands', async () => {
    const store = new SnapshotStore(mkdtempSync(path.join(tmpdir(), 'genesis-snap-')));
    const snap = etcdSnapshot(16);
    const good = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T01:00:00Z'), source, chunks: chunks(snap, 1000) });
    await expect(store.write({ cluster: 'lab', takenAt: day('2026-12-01T02:00:00Z'), source, chunks: chunks(snap, 1000, 5000) })).rejects.toThrow(
      new SnapshotError('EtcdSnapshot: connection dropped'),
    );
    const damaged = Buffer.from(snap);
    damaged[10]! ^= 1;
    await expect(store.write({ cluster: 'lab', takenAt: day('2026-12-01T03:00:00Z'), source, chunks: chunks(damaged, 1000) })).rejects.toThrow(/failed etcd's own sha256 check/);
    await expect(store.write({ cluster: 'lab', takenAt: day('2026-12-01T04:00:00Z'), source, chunks: chunks(Buffer.alloc(0), 1) })).rejects.toThrow(/empty snapshot/);
    expect(readdirSync(store.dir).sort()).toEqual([`${good.name}.db`, `${good.name}.json`]);
    expect((await store.list()).map((r) => r.name)).toEqual([good.name]);
  });

  it('verify finds a damaged file; leftovers of a crashed write are cleared by the next write', async () => {
    const store = new SnapshotStore(mkdtempSync(path.join(tmpdir(), 'genesis-snap-')));
    const snap = etcdSnapshot(16);
    const r = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T01:00:00Z'), source, chunks: chunks(snap, 4096) });
    const bytes = readFileSync(store.databasePath(r.name));
    bytes[3]! ^= 0xff;
    writeFileSync(store.databasePath(r.name), bytes);
    const v = await store.verify(r.name);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([expect.stringMatching(/^sha256 is [0-9a-f]{64}, [0-9a-f]{64} when taken$/), "etcd's appended sha256 does not match the database"]);
    await expect(store.verify('etcd-lab-20200101T000000Z')).rejects.toThrow(/no snapshot named/);
    // A name that is not a snapshot's never becomes a path.
    await expect(store.verify('../../etc/passwd')).rejects.toThrow(/no snapshot named/);
    expect(() => store.databasePath('../../etc/passwd')).toThrow(/not a snapshot name/);

    // A crash mid-write leaves a .part; one between the renames leaves a .db without metadata.
    writeFileSync(path.join(store.dir, `.${snapshotName('lab', day('2026-12-01T02:00:00Z'))}.db.part`), 'partial');
    writeFileSync(path.join(store.dir, `${snapshotName('lab', day('2026-12-01T02:30:00Z'))}.db`), 'orphan');
    expect((await store.list()).map((x) => x.name)).toEqual([r.name]);
    const next = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T03:00:00Z'), source, chunks: chunks(snap, 4096) });
    expect(readdirSync(store.dir).sort()).toEqual([`${r.name}.db`, `${r.name}.json`, `${next.name}.db`, `${next.name}.json`]);
    await store.remove(r.name);
    expect(existsSync(store.databasePath(r.name))).toBe(false);

    // The encrypted bundle beside a snapshot goes with it, and an orphaned one is cleared.
    const withSecrets = await store.write({ cluster: 'lab', takenAt: day('2026-12-01T05:00:00Z'), source, chunks: chunks(snap, 4096), secrets: Buffer.from('Salted__x') });
    expect(withSecrets.secretsFile).toBe(`${withSecrets.name}.secrets.enc`);
    expect(readFileSync(path.join(store.dir, withSecrets.secretsFile!), 'utf8')).toBe('Salted__x');
    expect(withSecrets.secretsSha256).toBe(createHash('sha256').update('Salted__x').digest('hex'));
    expect(await store.verify(withSecrets.name)).toMatchObject({ ok: true });
    writeFileSync(path.join(store.dir, withSecrets.secretsFile!), 'Salted__y');
    expect((await store.verify(withSecrets.name)).problems).toEqual([`${withSecrets.secretsFile} does not match its sha256 when taken`]);
    await store.remove(withSecrets.name);
    expect(existsSync(path.join(store.dir, withSecrets.secretsFile!))).toBe(false);
    writeFileSync(path.join(store.dir, `${snapshotName('lab', day('2026-12-01T06:00:00Z'))}.secrets.enc`), 'orphan');
    await store.write({ cluster: 'lab', takenAt: day('2026-12-01T07:00:00Z'), source, chunks: chunks(snap, 4096) });
    expect(readdirSync(store.dir).filter((e) => e.endsWith('.secrets.enc'))).toEqual([]);
  });
});

describe('common.Data decoder (EtcdSnapshot messages)', () => {
  // The reference: the same .proto through protobufjs, which grpc-js uses for every other call.
  const root = protobuf.loadSync(fileURLToPath(new URL('../../src/talos/proto/machine.proto', import.meta.url)));
  const Data = root.lookupType('machine.Data');
  const encode = (m: Record<string, unknown>) => Buffer.from(Data.encode(Data.fromObject(m)).finish());

  it('takes the bytes as they are, with no error, for every size and with metadata beside them', () => {
    for (const n of [0, 1, 127, 128, 1024, 70_000]) {
      const bytes = fakeBytes(n);
      expect(decodeDataMessage(encode({ bytes }))).toEqual({ bytes, error: null, code: null });
      expect(decodeDataMessage(encode({ metadata: { hostname: 'cp-1' }, bytes })).bytes.equals(bytes)).toBe(true);
    }
  });

  it("reads the node's error and status code from the metadata", () => {
    expect(decodeDataMessage(encode({ metadata: { hostname: 'cp-1', error: 'etcd is not running', status: { code: 9, message: 'x' } } }))).toEqual({
      bytes: Buffer.alloc(0),
      error: 'etcd is not running',
      code: 9,
    });
  });

  it('skips fields it does not know, and refuses a message cut short', () => {
    const known = encode({ bytes: Buffer.from('abc') });
    // Field 7 varint 300, field 8 fixed64, field 9 length-delimited, then the known field.
    const unknown = Buffer.from([0x38, 0xac, 0x02, 0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0x4a, 0x02, 0xff, 0xff]);
    expect(decodeDataMessage(Buffer.concat([unknown, known])).bytes.toString()).toBe('abc');
    expect(() => decodeDataMessage(known.subarray(0, known.length - 1))).toThrow(DataMessageError);
    expect(() => decodeDataMessage(Buffer.from([0x12, 0x80]))).toThrow(DataMessageError);
  });
});

function fakeBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) & 0xff;
  return b;
}
