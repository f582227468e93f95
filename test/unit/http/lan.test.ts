// GET /lan (http/lan.ts) through inject(): off, not probed yet, could not probe, and findings; the
// watch is read at each request (it starts with the proxyDHCP, after the routes exist).

import { describe, expect, it } from 'vitest';
import type { LanProbeResult } from '../../../src/dhcp/lan-probe.ts';
import { lanRoutes } from '../../../src/http/lan.ts';
import { routeGroup } from '../../helpers/inject.ts';

describe('lan route', () => {
  it('says why it does not probe, then what the watch found once it exists', async () => {
    const holder: { watch?: { status(): LanProbeResult | undefined }; disabledBecause: string } = { disabledBecause: 'dhcp.lan_probe_interval is 0' };
    const app = await routeGroup((a) => lanRoutes(a, holder));
    expect((await app.inject('/lan')).json()).toEqual({ probing: false, reason: 'dhcp.lan_probe_interval is 0', findings: [] });

    let result: LanProbeResult | undefined;
    holder.watch = { status: () => result };
    expect((await app.inject('/lan')).json()).toEqual({ probing: true, probedAt: null, findings: [] });

    result = { probedAt: '2026-12-02T10:00:00.000Z', unavailable: 'cannot probe the LAN for other PXE servers: port 68 needs root or CAP_NET_BIND_SERVICE' };
    expect((await app.inject('/lan')).json()).toEqual({ probing: false, reason: result.unavailable, probedAt: result.probedAt, findings: [] });

    const finding = { server: '192.0.2.2', kind: 'proxy-dhcp' as const, bootfile: 'http://192.0.2.2:8080/boot.ipxe', nextServer: '192.0.2.2', own: false, genesis: { cluster: 'lab', instance: 'x' }, severity: 'fail' as const, text: 'a second Genesis' };
    result = { probedAt: '2026-12-02T10:10:00.000Z', findings: [finding] };
    expect((await app.inject('/lan')).json()).toEqual({ probing: true, probedAt: result.probedAt, findings: [finding] });
  });
});
