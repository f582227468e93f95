// What a test needs of this host (programs on PATH, network namespaces), checked before it runs,
// so a host without them skips the test with the reason instead of failing it half-way.

import { spawnSync } from 'node:child_process';

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** The first of `commands` not on PATH, said as the reason to skip; undefined when all are there. */
export function commandMissing(commands: string[]): string | undefined {
  const missing = commands.find((cmd) => !hasCommand(cmd));
  return missing === undefined ? undefined : `${missing} is not installed`;
}

/** Why this host cannot make a network namespace with `ip netns add` (one is made and removed to find out). */
export function netnsMissing(): string | undefined {
  const probe = `genesis-probe-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'cannot create a network namespace (ip netns add)';
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}
