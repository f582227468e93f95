// GET /api/v1/lan: the other PXE servers the latest LAN probe heard (dhcp/lan-watch.ts), judged:
// a second Genesis for this cluster is a failure, any other PXE server a warning. Registered
// inside the API plugin (bearer token or session).

import type { FastifyInstance } from 'fastify';
import type { LanProbeResult } from '../dhcp/lan-watch.ts';

export type LanStatus = { status(): LanProbeResult | undefined };

/** `lan.watch` is read at each request: the watch starts with the proxyDHCP, after the routes exist. */
export function lanRoutes(app: FastifyInstance, lan: { watch?: LanStatus; disabledBecause: string } | undefined): void {
  app.get('/lan', async () => {
    if (!lan?.watch) return { probing: false, reason: lan?.disabledBecause ?? 'the LAN probe is off', findings: [] };
    const r = lan.watch.status();
    if (!r) return { probing: true, probedAt: null, findings: [] };
    if ('unavailable' in r) return { probing: false, reason: r.unavailable, probedAt: r.probedAt, findings: [] };
    return { probing: true, probedAt: r.probedAt, findings: r.findings };
  });
}
