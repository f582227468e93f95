// The commit a fleet directory is checked out at, read from .git itself (no git binary needed in
// the container): HEAD, then the branch's ref file or packed-refs. A worktree's `.git` file points
// at its git dir. Undefined when the directory is not in a git checkout or HEAD cannot be read.

import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

function gitDirOf(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const candidate = path.join(d, '.git');
    try {
      const st = statSync(candidate);
      if (st.isDirectory()) return candidate;
      const m = /^gitdir:\s*(.+)\s*$/m.exec(readFileSync(candidate, 'utf8'));
      if (m) return path.resolve(d, m[1]!);
    } catch {
      // not here; look in the parent
    }
    if (path.dirname(d) === d) return undefined;
  }
}

export function gitCommit(dir: string): string | undefined {
  const gitDir = gitDirOf(dir);
  if (!gitDir) return undefined;
  try {
    const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref:\s*(refs\/\S+)$/.exec(head)?.[1];
    if (!ref) return undefined;
    // A worktree keeps its HEAD apart but shares refs with the main git dir (`commondir`).
    let common = gitDir;
    try {
      common = path.resolve(gitDir, readFileSync(path.join(gitDir, 'commondir'), 'utf8').trim());
    } catch {
      // not a worktree
    }
    for (const base of [gitDir, common]) {
      try {
        const sha = readFileSync(path.join(base, ref), 'utf8').trim();
        if (/^[0-9a-f]{40}$/.test(sha)) return sha;
      } catch {
        // packed, perhaps
      }
    }
    const packed = readFileSync(path.join(common, 'packed-refs'), 'utf8');
    for (const line of packed.split('\n')) {
      const [sha, name] = line.split(' ');
      if (name === ref && sha && /^[0-9a-f]{40}$/.test(sha)) return sha;
    }
  } catch {
    return undefined;
  }
  return undefined;
}
