// The sockets for lan-probe.ts: send one PXE DISCOVER on the proxyDHCP's interface, collect the
// offers for a few seconds, ask each server that hands out an iPXE URL who it is, and judge them.
// `genesis doctor` runs it once; `genesis serve` with the proxyDHCP on runs it at start and then
// every `dhcp.lan_probe_interval` seconds, for the dashboard and GET /api/v1/lan.
//
// Offers go to port 68 (the client port): received on 0.0.0.0:68 (broadcasts reach only wildcard
// sockets), sent from the interface's address so the kernel puts the limited broadcast on that
// interface (see server.ts). Port 68 needs root or CAP_NET_BIND_SERVICE; without it the probe says
// so instead of failing. SO_REUSEADDR lets a DHCP client on the host keep its own port 68.

import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { encode } from './packet.ts';
import { genesisOrigin, judgeBootServers, probeDiscover, readOffer, type BootServerOffer, type GenesisIdentity, type LanProbeResult } from './lan-probe.ts';

export type { LanProbeResult } from './lan-probe.ts';


export type LanProbeOptions = {
  /** This host's address on the PXE interface: the probe goes out there. */
  address: string;
  self: { instance: string; cluster: string; addresses: readonly string[] };
  /** How long offers are collected (ms). */
  listenMs?: number;
  clientPort?: number;
  serverPort?: number;
  identify?: (origin: string) => Promise<GenesisIdentity | null>;
};

const IDENTITY_MAX_BYTES = 4096;

/** GET <origin>/healthz: a Genesis says its cluster and instance; anything else is not one. */
export async function identifyGenesis(origin: string): Promise<GenesisIdentity | null> {
  try {
    const res = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000), redirect: 'error' });
    if (!res.ok || !res.body) return null;
    // Whoever answers on the LAN may send anything: a Genesis's answer is a few dozen bytes.
    let text = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > IDENTITY_MAX_BYTES) return null;
    }
    const body = JSON.parse(text) as { genesis?: { cluster?: unknown; instance?: unknown } };
    const g = body.genesis;
    return typeof g?.cluster === 'string' && typeof g.instance === 'string' ? { cluster: g.cluster, instance: g.instance } : null;
  } catch {
    return null;
  }
}

function bind(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** One probe: every server that answered, judged. Never throws for the network's sake. */
export async function probeLan(o: LanProbeOptions): Promise<LanProbeResult> {
  const probedAt = new Date().toISOString();
  if (o.address.startsWith('127.')) return { probedAt, unavailable: `${o.address} is a loopback address: there is no LAN to probe` };
  const clientPort = o.clientPort ?? 68;
  const xid = (Math.random() * 2 ** 32) >>> 0;
  const offers: BootServerOffer[] = [];
  const listen = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const send = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  listen.on('message', (msg, from) => {
    const offer = readOffer(msg, xid, from.address);
    if (offer) offers.push(offer);
  });
  listen.on('error', () => {});
  send.on('error', () => {});
  try {
    await bind(listen, '0.0.0.0', clientPort);
    await bind(send, o.address, clientPort);
  } catch (err) {
    listen.close();
    send.close();
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EACCES' ? `port ${clientPort} needs root or CAP_NET_BIND_SERVICE` : e.code === 'EADDRNOTAVAIL' ? `${o.address} is not an address of this host` : e.message;
    return { probedAt, unavailable: `cannot probe the LAN for other PXE servers: ${why}` };
  }
  send.setBroadcast(true);
  const packet = encode(probeDiscover(xid));
  const listenMs = o.listenMs ?? 3000;
  // Twice, a second apart: one lost datagram does not hide a server.
  const shoot = () => send.send(packet, o.serverPort ?? 67, '255.255.255.255', () => {});
  shoot();
  const again = setTimeout(shoot, Math.min(1000, listenMs / 2));
  await new Promise((r) => setTimeout(r, listenMs));
  clearTimeout(again);
  listen.close();
  send.close();

  const identify = o.identify ?? identifyGenesis;
  const identities = new Map<string, GenesisIdentity | null>();
  await Promise.all(
    [...new Map(offers.map((x) => [x.server, x])).values()].map(async (offer) => {
      const origin = genesisOrigin(offer);
      identities.set(offer.server, origin ? await identify(origin) : null);
    }),
  );
  return { probedAt, findings: judgeBootServers(offers, identities, o.self) };
}

export type LanWatchOptions = LanProbeOptions & { intervalMs: number; log: Logger; probe?: (o: LanProbeOptions) => Promise<LanProbeResult> };

/** The serve side: probe at start and every `intervalMs`, keep the latest result, log what changed. */
export class LanWatch {
  private readonly opts: LanWatchOptions;
  private latest: LanProbeResult | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private reported = '';
  private stopped = false;

  constructor(o: LanWatchOptions) {
    this.opts = o;
  }

  start(): void {
    this.running = this.round();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The latest probe (undefined until the first one ends). */
  status(): LanProbeResult | undefined {
    return this.latest;
  }

  private async round(): Promise<void> {
    const result = await (this.opts.probe ?? probeLan)(this.opts);
    this.latest = result;
    const problems = 'findings' in result ? result.findings.filter((f) => f.severity !== 'ok') : [];
    const key = problems.map((p) => p.text).join('\n');
    // Said when it changes, not every interval.
    if (key !== this.reported) {
      for (const p of problems) this.opts.log[p.severity === 'fail' ? 'error' : 'warn']({ server: p.server, kind: p.kind }, p.text);
      if (!problems.length && this.reported) this.opts.log.info('no other PXE server answers on the LAN any more');
      this.reported = key;
    }
    if ('unavailable' in result) this.opts.log.debug({ reason: result.unavailable }, 'LAN probe not run');
    if (this.opts.intervalMs > 0 && !this.stopped) {
      this.timer = setTimeout(() => (this.running = this.round()), this.opts.intervalMs);
      this.timer.unref();
    }
  }
}
