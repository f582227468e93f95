// The stand-ins for Talos in the firmware boots: a Debian kernel and a busybox initramfs built at
// test time by a script in test/e2e (build-standin.sh for amd64, build-standin-arm64.sh for
// arm64), cached by the script's content (a changed script is rebuilt, not reused), and copied
// into an assets dir where Genesis serves Talos v1.14.0 for that architecture.

import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { BIN } from './genesis-process.ts';
import { run, type RunResult } from './run.ts';

export const STANDIN_VERSION = 'v1.14.0';

function standin(script: string, cachePrefix: string, arch: 'amd64' | 'arm64') {
  const file = path.resolve(import.meta.dirname, '../e2e', script);
  // The cloud-init part both stand-ins copy in counts too: a change to it rebuilds them.
  const shared = ['standin-cloud-init.sh', 'standin-curl.sh'].map((f) => readFileSync(path.resolve(import.meta.dirname, '../e2e', f)));
  const key = [readFileSync(file), ...shared].reduce((h, b) => h.update(b), createHash('sha256')).digest('hex').slice(0, 12);
  const cache = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'genesis-e2e', `${cachePrefix}${key}`);
  return {
    cache,
    /** Build (or reuse) the kernel and initramfs; returns the build's stderr on failure. */
    async build(): Promise<{ ok: boolean; stderr: string }> {
      mkdirSync(cache, { recursive: true });
      const r = await run('sh', [file, cache], { timeoutMs: 600_000 });
      return { ok: r.code === 0, stderr: r.stderr };
    },
    /** Put the stand-in where Genesis serves Talos STANDIN_VERSION for its architecture. */
    stage(assetsDir: string): void {
      const kdir = path.join(assetsDir, 'talos', STANDIN_VERSION, arch);
      mkdirSync(kdir, { recursive: true });
      cpSync(path.join(cache, 'vmlinuz'), path.join(kdir, 'vmlinuz'));
      cpSync(path.join(cache, 'initramfs.xz'), path.join(kdir, 'initramfs.xz'));
    },
    /**
     * `genesis assets import` of the stand-in into a scratch assets dir: as it is, and the other
     * way round (the initramfs given as the kernel). The real Debian kernel and initramfs the
     * firmware boots must pass the import's checks, and swapped must not.
     */
    async importChecks(): Promise<{ asIs: RunResult; swapped: RunResult }> {
      const dir = mkdtempSync(path.join(tmpdir(), 'genesis-standin-import-'));
      const env = { PATH: process.env.PATH, GENESIS_ASSETS_DIR: path.join(dir, 'assets'), GENESIS_DATA_DIR: path.join(dir, 'data') };
      const importing = (kernel: string, initramfs: string) =>
        run(process.execPath, [BIN, 'assets', 'import', '--talos', STANDIN_VERSION, '--arch', arch, path.join(cache, kernel), path.join(cache, initramfs)], { env, cwd: dir });
      try {
        return { asIs: await importing('vmlinuz', 'initramfs.xz'), swapped: await importing('initramfs.xz', 'vmlinuz') };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    /** Put the stand-in where Genesis serves a Linux profile's kernel and initrd (their default names). */
    stageProfile(assetsDir: string, profile: string): void {
      const kdir = path.join(assetsDir, profile, arch);
      mkdirSync(kdir, { recursive: true });
      cpSync(path.join(cache, 'vmlinuz'), path.join(kdir, 'vmlinuz'));
      cpSync(path.join(cache, 'initramfs.xz'), path.join(kdir, 'initrd'));
    },
  };
}

const amd64 = standin('build-standin.sh', '', 'amd64');
const arm64 = standin('build-standin-arm64.sh', 'arm64-', 'arm64');
export const STANDIN_CACHE = amd64.cache;
export const buildStandin = amd64.build;
export const stageStandin = amd64.stage;
export const stageStandinProfile = amd64.stageProfile;
export const importStandinChecks = amd64.importChecks;
export const buildArm64Standin = arm64.build;
export const stageArm64Standin = arm64.stage;
export const stageArm64StandinProfile = arm64.stageProfile;
export const importArm64StandinChecks = arm64.importChecks;
export const ARM64_STANDIN_CACHE = arm64.cache;
