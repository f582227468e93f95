// Who else answers PXE clients on this LAN, decided from the offers to one probe DISCOVER. Pure:
// the packet Genesis sends, how an offer is read, and how each answering server is judged.
// (The sockets are in lan-watch.ts; `genesis doctor` and the serve-side watch share both.)
//
// A proxyDHCP's offer gives no address (yiaddr 0.0.0.0) and says PXEClient or HTTPClient in
// option 60; the LAN's DHCP server offers an address. The probe says it is iPXE, so a Genesis
// answers with its boot.ipxe URL and can then be asked who it is (GET /healthz).

import { BOOTREQUEST, decode, MessageType, Option, type DhcpPacket } from './packet.ts';

/**
 * The probe's MAC: locally administered ("02:"), so it is no real machine's, and the same on every
 * probe, so a server's log shows one client asking now and then rather than many.
 */
export const PROBE_MAC = '02:47:4e:53:49:53';

export type BootServerOffer = {
  /** The server's address: its server identifier (option 54), else the sender's. */
  server: string;
  /** `proxy-dhcp`: boot information without an address; `dhcp`: the LAN's DHCP server. */
  kind: 'proxy-dhcp' | 'dhcp';
  /** The boot file it names (header field, else option 67), or null. */
  bootfile: string | null;
  /** next-server (siaddr), when set. */
  nextServer: string | null;
};

/** What a Genesis says about itself on GET /healthz. */
export type GenesisIdentity = { cluster: string; instance: string };

export type LanFinding = BootServerOffer & {
  /** It is this Genesis. */
  own: boolean;
  /** It is a Genesis (it answered /healthz as one). */
  genesis: GenesisIdentity | null;
  severity: 'ok' | 'warn' | 'fail';
  text: string;
};

/** One probe's outcome: the servers that answered, judged; or why no probe could be sent. */
export type LanProbeResult = { probedAt: string; findings: LanFinding[] } | { probedAt: string; unavailable: string };

/** One PXE DISCOVER as iPXE on an x86-64 UEFI machine would send it, asking for a broadcast answer. */
export function probeDiscover(xid: number): DhcpPacket {
  const options = new Map<number, Buffer>([
    [Option.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
    [Option.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00007:UNDI:003016')],
    [Option.CLIENT_ARCH, Buffer.from([0, 7])],
    [Option.USER_CLASS, Buffer.from('iPXE')],
    [Option.PARAMETER_LIST, Buffer.from([1, 3, 6, 43, 54, 60, 66, 67])],
  ]);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 4,
    // Broadcast: the probe has no address, and every server must answer where the probe hears it.
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from(PROBE_MAC.split(':').map((h) => parseInt(h, 16))), Buffer.alloc(10)]),
    sname: '',
    file: '',
    options,
  };
}

/** An OFFER answering the probe `xid`, read; anything else (other traffic on port 68, garbage) is undefined. */
export function readOffer(msg: Buffer, xid: number, from: string): BootServerOffer | undefined {
  let p: DhcpPacket;
  try {
    p = decode(msg);
  } catch {
    return undefined;
  }
  if (p.xid !== xid || p.options.get(Option.MESSAGE_TYPE)?.[0] !== MessageType.OFFER) return undefined;
  const id = p.options.get(Option.SERVER_ID);
  const server = id?.length === 4 ? [...id].join('.') : from;
  const vendor = p.options.get(Option.VENDOR_CLASS)?.toString('latin1') ?? '';
  const proxy = p.yiaddr === '0.0.0.0' && (vendor.startsWith('PXEClient') || vendor.startsWith('HTTPClient'));
  const bootfile = p.file || p.options.get(Option.BOOTFILE_NAME)?.toString('latin1').replace(/\0+$/, '') || null;
  return { server, kind: proxy ? 'proxy-dhcp' : 'dhcp', bootfile, nextServer: p.siaddr === '0.0.0.0' ? null : p.siaddr };
}

/** Where to ask a server that may be a Genesis who it is: the origin of an iPXE script URL it hands out. */
export function genesisOrigin(offer: BootServerOffer): string | undefined {
  const m = /^(https?:\/\/[^/\s]+)\/boot\.ipxe$/.exec(offer.bootfile ?? '');
  return m?.[1];
}

/**
 * Judge each server that answered. `self`: this Genesis (its instance id, cluster name and
 * addresses; doctor passes this host's addresses and no instance); `identities`: what each
 * server's /healthz said (null: not a Genesis, or no answer).
 */
export function judgeBootServers(
  offers: BootServerOffer[],
  identities: ReadonlyMap<string, GenesisIdentity | null>,
  self: { instance: string; cluster: string; addresses: readonly string[] },
): LanFinding[] {
  // One finding per server and kind: a server that answered twice (resent probes) counts once.
  const seen = new Map<string, BootServerOffer>();
  for (const o of offers) seen.set(`${o.kind} ${o.server}`, o);
  return [...seen.values()].map((o) => {
    const genesis = identities.get(o.server) ?? null;
    // This Genesis, or (for `genesis doctor`, which has no instance of its own) one at this host's address.
    const own = genesis?.instance === self.instance || self.addresses.includes(o.server);
    const pointsHere = [o.nextServer, o.bootfile].some((v) => v !== null && self.addresses.some((a) => v === a || v.includes(`//${a}:`) || v.includes(`//${a}/`)));
    const base = { ...o, own, genesis };
    if (o.kind === 'dhcp') {
      if (!o.bootfile && !o.nextServer) return { ...base, severity: 'ok', text: `the LAN's DHCP server ${o.server} (no boot file: PXE clients need a proxyDHCP, or its boot options)` };
      if (pointsHere || own) return { ...base, severity: 'ok', text: `the LAN's DHCP server ${o.server} sends PXE clients to this Genesis` };
      return {
        ...base,
        severity: 'warn',
        text: `the LAN's DHCP server ${o.server} sends PXE clients to ${o.bootfile ?? o.nextServer}, not to this Genesis: machines may boot from there (docs/dhcp.md)`,
      };
    }
    if (own) return { ...base, severity: 'ok', text: `this Genesis's proxyDHCP (${o.server})` };
    if (genesis && genesis.cluster === self.cluster) {
      return {
        ...base,
        severity: 'fail',
        text: `a second Genesis for cluster ${JSON.stringify(self.cluster)} answers PXE clients at ${o.server}: both would provision the same machines and each would bootstrap its own etcd; stop one (docs/beyond-one-host.md)`,
      };
    }
    if (genesis) return { ...base, severity: 'warn', text: `another Genesis (cluster ${JSON.stringify(genesis.cluster)}) answers PXE clients at ${o.server}: a machine boots from whichever answers first` };
    return { ...base, severity: 'warn', text: `another proxyDHCP at ${o.server} answers PXE clients${o.bootfile ? ` (boot file ${o.bootfile})` : ''}: a machine boots from whichever answers first` };
  });
}
