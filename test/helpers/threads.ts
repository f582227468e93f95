// A process's threads by name, read from /proc: what `top -H` shows as their command.

import { readdirSync, readFileSync } from 'node:fs';

/** The thread ids of `pid` (this process by default) whose name is `name`. */
export function threadsNamed(name: string, pid: number | 'self' = 'self'): number[] {
  const tasks = `/proc/${pid}/task`;
  return readdirSync(tasks)
    .filter((tid) => {
      try {
        return readFileSync(`${tasks}/${tid}/comm`, 'utf8').trim() === name;
      } catch {
        // A thread that ended between the listing and the read.
        return false;
      }
    })
    .map(Number);
}
