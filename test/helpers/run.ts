// Run a real client program and collect its output; never throws on a non-zero exit.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type RunResult = { code: number | null; stdout: string; stderr: string };

export function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    // The timeout is a safety net against a hung client, not a synchronisation point.
    execFile(cmd, args, { timeout: opts.timeoutMs ?? 120_000, cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}
