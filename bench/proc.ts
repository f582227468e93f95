// What the benches read about a server process from /proc (Linux): its resident memory, its CPU
// time and its children. A process gone meanwhile reads as 0 / none.

import { readFileSync } from 'node:fs';

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times, on every architecture Genesis runs on. */
const CLK_TCK = 100;

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** VmRSS in KiB. */
export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(read(`/proc/${pid}/status`) ?? '')?.[1] ?? 0);
}

/** User plus system CPU time, in seconds. */
export function cpuSeconds(pid: number): number {
  const fields = read(`/proc/${pid}/stat`)?.split(') ')[1]?.split(' ');
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLK_TCK : 0;
}

/** The processes and their direct children (nginx's workers, Genesis's bulk sender), now. */
export function withChildren(pids: number[]): number[] {
  const all = new Set<number>();
  for (const p of pids) {
    all.add(p);
    for (const c of read(`/proc/${p}/task/${p}/children`)?.split(/\s+/) ?? []) if (c) all.add(Number(c));
  }
  return [...all];
}
