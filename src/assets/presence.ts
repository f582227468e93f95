// Whether a Talos version's boot files are in place, with "present" remembered for a moment. Every
// install script asks, and two file lookups a request were a noticeable part of its cost in a boot
// storm. Files removed under a running Genesis are noticed up to ttlMs late (a machine sent to
// them then fails its download and asks again); files added are seen at once, because "missing"
// is never remembered: the machine waiting for them goes ahead on its next request.

import type { Arch } from '../domain/node.ts';

export function rememberedPresence(check: (version: string, arch: Arch) => boolean, ttlMs = 1000, now: () => number = Date.now): (version: string, arch: Arch) => boolean {
  const seen = new Map<string, number>();
  return (version, arch) => {
    const key = `${version} ${arch}`;
    const t = now();
    const at = seen.get(key);
    if (at !== undefined && t - at < ttlMs) return true;
    const present = check(version, arch);
    // Keyed by what the inventory names (a version and an arch); bounded all the same.
    if (seen.size >= 1000) seen.clear();
    if (present) seen.set(key, t);
    else seen.delete(key);
    return present;
  };
}
