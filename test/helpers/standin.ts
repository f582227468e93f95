// The stand-in for Talos in the firmware boots: a Debian kernel and a busybox initramfs built at
// test time by test/e2e/build-standin.sh, cached by the script's content (a changed script is
// rebuilt, not reused), and copied into an assets dir where Genesis serves Talos v1.14.0.

import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { run } from './run.ts';

const SCRIPT = path.resolve(import.meta.dirname, '../e2e/build-standin.sh');
const KEY = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 12);
export const STANDIN_CACHE = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'genesis-e2e', KEY);
export const STANDIN_VERSION = 'v1.14.0';

/** Build (or reuse) the kernel and initramfs; returns the build's stderr on failure. */
export async function buildStandin(): Promise<{ ok: boolean; stderr: string }> {
  mkdirSync(STANDIN_CACHE, { recursive: true });
  const r = await run('sh', [SCRIPT, STANDIN_CACHE], { timeoutMs: 600_000 });
  return { ok: r.code === 0, stderr: r.stderr };
}

/** Put the stand-in where Genesis serves Talos STANDIN_VERSION for amd64. */
export function stageStandin(assetsDir: string): void {
  const kdir = path.join(assetsDir, 'talos', STANDIN_VERSION, 'amd64');
  mkdirSync(kdir, { recursive: true });
  cpSync(path.join(STANDIN_CACHE, 'vmlinuz'), path.join(kdir, 'vmlinuz'));
  cpSync(path.join(STANDIN_CACHE, 'initramfs.xz'), path.join(kdir, 'initramfs.xz'));
}
