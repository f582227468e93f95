// Files many clients download at once, read into memory once and written to each of them from
// there. A download from a file costs two copies of every byte (the read into a buffer, the write
// into the socket); from memory, one. nginx copies none (sendfile), which Node cannot do; in a
// 200-machine storm the read copies were most of the sender's CPU. A lone download, or a few,
// still streams from the file: memory is spent only when enough downloads of the same file run
// that their buffers would hold about as much.
//
// The bookkeeping here is pure (what to hold, for whom, until when); reading the file is the
// caller's, through `load`, and so is writing from it (sender-process.ts).

/** What identifies one version of a file: a replaced file (a new inode, size or mtime) is another. */
export type FileIdentity = { dev: number; ino: number; size: number; mtimeMs: number };

export type SharedFilesLimits = {
  /** Downloads of one file running at once from which it is held in memory. */
  shareFrom: number;
  /** Files larger than this always stream. */
  maxFileBytes: number;
  /** All files held at once, at most. */
  maxTotalBytes: number;
  /** How long a file stays held after its last download ends (the next wave of a storm). */
  keepMs: number;
};

/**
 * From 8 downloads of one file at once, a storm even for a homelab's 3 to 12 machines: the file
 * is read into memory then, and downloads switch over to it as soon as it is there, so none
 * waits for it. Fewer stream, holding only their 256 KiB buffers. Files up to 160 MiB (a Talos
 * initramfs is 60–100 MB), 320 MiB in all: an amd64 and an arm64 release, or two versions of one.
 * Held until 10 s after the last download of it; the sender itself leaves after a quiet minute.
 */
export const SHARED_FILES_LIMITS: SharedFilesLimits = { shareFrom: 8, maxFileBytes: 160 * 1024 * 1024, maxTotalBytes: 320 * 1024 * 1024, keepMs: 10_000 };

type Entry = {
  users: number;
  size: number;
  idleSince: number;
  /** Set while the file is held (its size counted in heldBytes): loading, then with its content. */
  holding: { buffer?: Buffer } | undefined;
  /** Its load failed: it streams from now on. */
  failed: boolean;
};

export class SharedFiles {
  private readonly limits: SharedFilesLimits;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private heldBytes = 0;

  constructor(limits: SharedFilesLimits = SHARED_FILES_LIMITS, now: () => number = () => Date.now()) {
    this.limits = limits;
    this.now = now;
  }

  /** Bytes of file content held (or being read) now. */
  get heldBytesNow(): number {
    return this.heldBytes;
  }

  /**
   * A download of this file begins. The one that makes enough of them starts `load` (the whole
   * file); no download waits for it: each streams from the file until held() has the content.
   * Every enter() needs its leave().
   */
  enter(file: FileIdentity, load: () => Promise<Buffer>): void {
    this.forgetIdle();
    const key = keyOf(file);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { users: 0, size: file.size, idleSince: 0, holding: undefined, failed: false };
      this.entries.set(key, entry);
    }
    entry.users++;
    if (entry.holding || entry.failed || entry.users < this.limits.shareFrom) return;
    if (file.size > this.limits.maxFileBytes || this.heldBytes + file.size > this.limits.maxTotalBytes) return;
    const holding: { buffer?: Buffer } = {};
    const held = entry;
    held.holding = holding;
    this.heldBytes += file.size;
    // A file that cannot be read whole (or is not the size it was) is streamed, as before. A load
    // that ends after the file was let go fills a holding nobody looks at any more.
    const fail = () => {
      held.failed = true;
      if (held.holding === holding) this.drop(key, held);
    };
    load().then((buffer) => {
      if (buffer.length === file.size) holding.buffer = buffer;
      else fail();
    }, fail);
  }

  /** The file's content, when it is held in memory now. */
  held(file: FileIdentity): Buffer | undefined {
    return this.entries.get(keyOf(file))?.holding?.buffer;
  }

  /** A download of this file ended (however it ended). */
  leave(file: FileIdentity): void {
    const key = keyOf(file);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.users--;
    if (entry.users > 0) return;
    if (!entry.holding) this.entries.delete(key);
    else entry.idleSince = this.now();
    this.forgetIdle();
  }

  /** Forgets files nobody has downloaded for keepMs. */
  forgetIdle(): void {
    const t = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.users === 0 && entry.holding && t - entry.idleSince >= this.limits.keepMs) this.drop(key, entry);
    }
  }

  /** Stops holding the file's content; downloads already writing from it finish from their copy. */
  private drop(key: string, entry: Entry): void {
    if (entry.holding) this.heldBytes -= entry.size;
    entry.holding = undefined;
    if (entry.users === 0 && this.entries.get(key) === entry) this.entries.delete(key);
  }
}

function keyOf(f: FileIdentity): string {
  return `${f.dev}:${f.ino}:${f.size}:${f.mtimeMs}`;
}
