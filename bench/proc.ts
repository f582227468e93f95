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

/**
 * Pss in KiB (smaps_rollup, Linux 4.14+): the process's private pages plus its share of each page
 * it maps with others. Summed over Genesis and its bulk sender it counts node's binary, mapped by
 * both, once, where summed VmRSS counts it twice. Undefined where it cannot be read. Reading it
 * walks the process's page tables (about a millisecond at a few hundred MB), so it is read
 * sparingly.
 */
export function pssKiB(pid: number): number | undefined {
  const v = /^Pss:\s+(\d+)/m.exec(read(`/proc/${pid}/smaps_rollup`) ?? '')?.[1];
  return v === undefined ? undefined : Number(v);
}

/** User plus system CPU time, in seconds. */
export function cpuSeconds(pid: number): number {
  const fields = read(`/proc/${pid}/stat`)?.split(') ')[1]?.split(' ');
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLK_TCK : 0;
}

/**
 * The whole machine's busy CPU time so far, in seconds (every core: user, nice, system, irq,
 * softirq, steal). A server that forks a process per transfer (tftpd-hpa) leaves no per-process
 * figure to read; the difference between two servers' rounds with the same clients is theirs.
 */
export function machineBusySeconds(): number {
  const cpu = read('/proc/stat')?.split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
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
