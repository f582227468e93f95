// The arm64 stand-in for Talos (test/e2e/build-standin-arm64.sh), cached by the script's content
// like the x86 one, and staged where Genesis serves Talos STANDIN_VERSION for arm64.

import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { run } from './run.ts';
import { STANDIN_VERSION } from './standin.ts';

const SCRIPT = path.resolve(import.meta.dirname, '../e2e/build-standin-arm64.sh');
const KEY = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 12);
const CACHE = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'genesis-e2e', `arm64-${KEY}`);

export async function buildArm64Standin(): Promise<{ ok: boolean; stderr: string }> {
  mkdirSync(CACHE, { recursive: true });
  const r = await run('sh', [SCRIPT, CACHE], { timeoutMs: 600_000 });
  return { ok: r.code === 0, stderr: r.stderr };
}

export function stageArm64Standin(assetsDir: string): void {
  const kdir = path.join(assetsDir, 'talos', STANDIN_VERSION, 'arm64');
  mkdirSync(kdir, { recursive: true });
  cpSync(path.join(CACHE, 'vmlinuz'), path.join(kdir, 'vmlinuz'));
  cpSync(path.join(CACHE, 'initramfs.xz'), path.join(kdir, 'initramfs.xz'));
}
