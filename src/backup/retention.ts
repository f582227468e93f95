// Which etcd snapshots to keep: the newest of each of the last `dailyDays` UTC days, plus the
// newest `keepNewest` whatever their day (several taken in one day by hand stay until they age
// out of that count). Pure: the store lists, this decides, the store deletes.

export type RetentionPolicy = { dailyDays: number; keepNewest: number };

export type Dated = { name: string; takenAt: Date };

const DAY_MS = 86_400_000;

/** Names to delete, oldest first. Snapshots dated in the future (a clock jump) are kept. */
export function snapshotsToPrune(snapshots: readonly Dated[], policy: RetentionPolicy, now: Date): string[] {
  const newestFirst = [...snapshots].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.name < b.name ? 1 : -1));
  const keep = new Set(newestFirst.slice(0, policy.keepNewest).map((s) => s.name));
  const today = Math.floor(now.getTime() / DAY_MS);
  const daysSeen = new Set<number>();
  for (const s of newestFirst) {
    const day = Math.floor(s.takenAt.getTime() / DAY_MS);
    if (day > today) {
      keep.add(s.name);
      continue;
    }
    if (today - day < policy.dailyDays && !daysSeen.has(day)) {
      daysSeen.add(day);
      keep.add(s.name);
    }
  }
  return newestFirst
    .filter((s) => !keep.has(s.name))
    .map((s) => s.name)
    .reverse();
}
