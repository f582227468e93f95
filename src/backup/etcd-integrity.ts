// etcd's maintenance API streams a snapshot as the bolt database followed by the sha256 of that
// database (32 bytes). `etcdutl snapshot restore` and Talos's recover check it unless told to skip
// (recover_skip_hash_check, for a database file copied off a disk, which has no hash). A bolt file
// is a whole number of 512-byte units, so the hash is there exactly when size % 512 == 32.
// Pure: bytes in, a verdict out; no file is read here.

import { createHash, type Hash } from 'node:crypto';

const SHA256_SIZE = 32;

export type EtcdIntegrity =
  /** The appended hash matches the database before it. */
  | 'hash-ok'
  /** A size that carries a hash, and the hash does not match: a truncated or damaged snapshot. */
  | 'hash-mismatch'
  /** No appended hash (a raw database copy); nothing to check it against. */
  | 'no-hash';

/** Hashes a stream twice at once: the whole of it, and everything but its last 32 bytes. */
export class SnapshotDigest {
  private readonly whole: Hash = createHash('sha256');
  private readonly body: Hash = createHash('sha256');
  /** The newest bytes seen, held back from `body` until more arrive: they may be the trailer. */
  private tail = Buffer.alloc(0);
  size = 0;

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    if (chunk.length >= SHA256_SIZE) {
      // The held-back bytes are not the trailer after all; the chunk's own last 32 may be. No copy
      // of the chunk itself: a 1 MiB chunk costs no second 1 MiB.
      if (this.tail.length) this.body.update(this.tail);
      this.body.update(chunk.subarray(0, chunk.length - SHA256_SIZE));
      this.tail = Buffer.from(chunk.subarray(chunk.length - SHA256_SIZE));
      return;
    }
    const joined = Buffer.concat([this.tail, chunk]);
    const release = joined.length - SHA256_SIZE;
    if (release > 0) this.body.update(joined.subarray(0, release));
    this.tail = joined.subarray(Math.max(0, release));
  }

  /** sha256 of everything (hex), and the etcd verdict. Call once, after the last chunk. */
  finish(): { sha256: string; etcd: EtcdIntegrity } {
    const sha256 = this.whole.digest('hex');
    if (this.size % 512 !== SHA256_SIZE || this.tail.length !== SHA256_SIZE) return { sha256, etcd: 'no-hash' };
    return { sha256, etcd: this.body.digest().equals(this.tail) ? 'hash-ok' : 'hash-mismatch' };
  }
}
