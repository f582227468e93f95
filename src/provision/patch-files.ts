// genesis.yaml's Talos patch files (talos.patches.cluster, .controlplane, .worker), read at start
// and again when they change, never on every request: the boot path asks for a render verdict on
// each install-script request. A change is seen by a directory watch (an editor's write-then-rename
// included) and, so an edit applies at once and a missed event cannot leave an old patch in force,
// by the file's identity (inode, size, mtime and ctime in ns) checked before each use: one stat.
// An edit applies without a restart; a file that cannot be read or parsed is that slot's problem.

import { createHash } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Role } from '../talos/documents.ts';
import { parsePatch, PatchError, type Patch } from '../talos/patch.ts';

/** The files' paths by slot; empty: no patch for that slot. */
export type PatchFiles = { cluster: string; controlplane: string; worker: string };
export type PatchSlot = 'cluster' | Role;
export const PATCH_SLOTS = ['cluster', 'controlplane', 'worker'] as const;

/** One slot as last read: its text and parsed patch, or why it cannot be used; sha256 names the content. */
export type LoadedPatch = { file: string; text: string | null; patch: Patch | null; error: PatchError | null; sha256: string };

type Entry = { loaded: LoadedPatch; identity: string; dirty: boolean };

export class PatchFileSet {
  private readonly files: PatchFiles;
  private readonly read: (file: string) => string;
  private readonly entries = new Map<PatchSlot, Entry>();
  private readonly watchers: FSWatcher[] = [];

  /** `watch`: follow the files' directories (serve); a one-shot render needs no watch. `read`: for tests. */
  constructor(files: PatchFiles, opts: { watch?: boolean; read?: (file: string) => string } = {}) {
    this.files = files;
    this.read = opts.read ?? ((f) => readFileSync(f, 'utf8'));
    for (const slot of PATCH_SLOTS) if (files[slot]) this.entries.set(slot, this.load(slot));
    if (opts.watch) this.watchDirectories();
  }

  /** The slot's patch as it is now on disk; undefined when no file is set for it. */
  slot(slot: PatchSlot): LoadedPatch | undefined {
    const entry = this.entries.get(slot);
    if (!entry) return undefined;
    if (entry.dirty || identity(this.files[slot]) !== entry.identity) {
      const fresh = this.load(slot);
      this.entries.set(slot, fresh);
      return fresh.loaded;
    }
    return entry.loaded;
  }

  close(): void {
    for (const w of this.watchers.splice(0)) w.close();
  }

  private load(slot: PatchSlot): Entry {
    const file = this.files[slot];
    const label = `talos.patches.${slot} (${file})`;
    // The identity is taken before the read: a change during the read is seen at the next use.
    const id = identity(file);
    let text: string;
    try {
      text = this.read(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { identity: id, dirty: false, loaded: { file, text: null, patch: null, error: new PatchError(`${label}: cannot read: ${code}`), sha256: `unreadable:${code}` } };
    }
    const sha256 = createHash('sha256').update(text).digest('hex');
    try {
      return { identity: id, dirty: false, loaded: { file, text, patch: parsePatch(text, label), error: null, sha256 } };
    } catch (err) {
      if (!(err instanceof PatchError)) throw err;
      return { identity: id, dirty: false, loaded: { file, text, patch: null, error: err, sha256 } };
    }
  }

  private watchDirectories(): void {
    const byDir = new Map<string, PatchSlot[]>();
    for (const slot of this.entries.keys()) {
      const dir = path.dirname(this.files[slot]);
      byDir.set(dir, [...(byDir.get(dir) ?? []), slot]);
    }
    for (const [dir, slots] of byDir) {
      try {
        const w = watch(dir, (_event, name) => {
          for (const slot of slots) if (!name || name === path.basename(this.files[slot])) this.entries.get(slot)!.dirty = true;
        });
        w.on('error', () => {});
        w.unref();
        this.watchers.push(w);
      } catch {
        // A directory that cannot be watched: the identity check before each use still sees changes.
      }
    }
  }
}

function identity(file: string): string {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}
