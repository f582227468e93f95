// Loads one of Genesis's native addons (native/*.c, built by scripts/build-native.sh when npm
// installs Genesis). Each has a fallback in TypeScript; when it is absent or does not load, the
// reason is kept for the log and for `genesis doctor`.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type AddonLoad<T> = { addon: T; path: string; reason?: undefined } | { addon?: undefined; reason: string };

/** Where the install script puts the addon built from native/<name>.c. */
export function addonPath(name: string): string {
  return fileURLToPath(new URL(`../../build/native/${name}.node`, import.meta.url));
}

/**
 * The addon at `path`, or why not. `label` names it in the reasons ("the sendfile addon"),
 * `functions` are what it must export.
 */
export function loadAddon<T>(path: string, label: string, functions: string[]): AddonLoad<T> {
  if (process.platform !== 'linux') return { reason: `the ${label} addon is used on Linux only` };
  if (!existsSync(path)) return { reason: `the ${label} addon is not built (${path}; npm ci builds it with a C compiler: scripts/build-native.sh)` };
  try {
    const addon = createRequire(import.meta.url)(path) as Record<string, unknown>;
    if (functions.some((f) => typeof addon[f] !== 'function')) return { reason: `${path} is not Genesis's ${label} addon` };
    return { addon: addon as T, path };
  } catch (err) {
    return { reason: `the ${label} addon did not load: ${(err as Error).message.split('\n')[0]}` };
  }
}
