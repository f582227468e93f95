// Spotting the classic PXE misconfiguration: a DHCP server that hands the iPXE binary to iPXE
// itself (no user-class rule), so every machine loads iPXE, which asks DHCP, loads iPXE again,
// forever. Nothing fails loudly; the machine just never boots. Genesis sees it as the same
// address fetching an iPXE binary over and over, and says what to change. Pure: time is passed in.

import { IPXE_BINARY_NAMES } from '../ipxe/binaries.ts';

export const LOOP_ADVICE =
  'is loading iPXE again and again: the DHCP server hands the iPXE binary to iPXE itself. ' +
  'Give iPXE (user class "iPXE") the http://…/boot.ipxe URL instead (docs/dhcp.md, way A), or clear the router\'s boot file name and set dhcp.proxy: true (way B)';

export class ChainloadLoopDetector {
  private readonly fetches = new Map<string, number[]>();
  private readonly warned = new Map<string, number>();
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly quietMs: number;

  constructor(opts: { threshold?: number; windowMs?: number; quietMs?: number } = {}) {
    this.threshold = opts.threshold ?? 3;
    this.windowMs = opts.windowMs ?? 120_000;
    this.quietMs = opts.quietMs ?? 600_000;
  }

  /** A completed TFTP download by `ip`; returns a warning the first time a loop shows (then quiet for a while). */
  observe(ip: string, file: string, now: number): string | undefined {
    if (!IPXE_BINARY_NAMES.has(file.replace(/^\/+/, ''))) return undefined;
    const recent = (this.fetches.get(ip) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    this.fetches.set(ip, recent);
    // Bounded memory: forget addresses that went quiet.
    if (this.fetches.size > 1024) for (const [k, v] of this.fetches) if (now - v.at(-1)! >= this.windowMs) this.fetches.delete(k);
    if (recent.length < this.threshold) return undefined;
    const last = this.warned.get(ip);
    if (last !== undefined && now - last < this.quietMs) return undefined;
    this.warned.set(ip, now);
    return `${ip} fetched ${file} ${recent.length} times in ${Math.round(this.windowMs / 1000)} s: it ${LOOP_ADVICE}`;
  }
}
