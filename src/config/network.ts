// Finding the address machines should use to reach Genesis: the IPv4 address of the interface
// that holds the default route, which on a homelab box is the LAN the machines boot on.

import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The interface of the lowest-metric default route in /proc/net/route text, if any. */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of procNetRoute.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = cols as [string, string, string, string, string, string, string, string];
    const up = (parseInt(flags, 16) & 0x1) !== 0;
    if (dest !== '00000000' || mask !== '00000000' || !up) continue;
    const m = parseInt(metric, 10);
    if (!best || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface;
}

export type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/** IPv4 addresses of non-loopback interfaces, by interface name. */
export function ipv4ByInterface(ifaces: Interfaces): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, infos] of Object.entries(ifaces)) {
    const v4 = (infos ?? []).filter((i) => i.family === 'IPv4' && !i.internal).map((i) => i.address);
    if (v4.length > 0) out.set(name, v4);
  }
  return out;
}

export function pickAdvertiseAddr(routeTable: string | undefined, ifaces: Interfaces): string | undefined {
  const byIface = ipv4ByInterface(ifaces);
  const iface = routeTable ? defaultRouteInterface(routeTable) : undefined;
  if (iface && byIface.get(iface)?.[0]) return byIface.get(iface)![0];
  // No default route (an isolated lab network): only an unambiguous single address will do.
  const all = [...byIface.values()].flat();
  return all.length === 1 ? all[0] : undefined;
}

export function detectAdvertiseAddr(): string | undefined {
  let routes: string | undefined;
  try {
    routes = readFileSync('/proc/net/route', 'utf8');
  } catch {
    routes = undefined; // not Linux
  }
  return pickAdvertiseAddr(routes, os.networkInterfaces());
}

/**
 * The proxyDHCP address: with no interface named, `advertise` itself (binding to it works while
 * the link is still down; the interface name is only for the log). With a name, that interface's
 * address. Node lists only interfaces that are up with a carrier (libuv skips the others), so a
 * named interface that exists (`linkExists`, /sys/class/net) but is not listed is down or has no
 * carrier yet, as when the switch comes up after this host following a power cut: bind
 * `advertise` anyway (the kernel allows it, and answers flow once the link is up) and say so.
 */
export function proxyDhcpAddress(
  iface: string,
  advertise: string,
  ifaces: Interfaces,
  linkExists: (name: string) => boolean = () => false,
): { iface: string; address: string; warning?: string } | { problem: string } {
  const byIface = ipv4ByInterface(ifaces);
  if (!iface) {
    const name = [...byIface].find(([, addrs]) => addrs.includes(advertise))?.[0];
    return { iface: name ?? '(advertise_addr)', address: advertise };
  }
  const addrs = byIface.get(iface);
  if (!addrs) {
    if (linkExists(iface)) {
      return {
        iface,
        address: advertise,
        warning: `interface ${iface} is down or has no carrier yet: the proxyDHCP listens on ${advertise} now and answers once the link comes up (check the cable or switch if this lasts)`,
      };
    }
    return { problem: `interface ${iface} does not exist or has no IPv4 address (up with an address: ${[...byIface.keys()].join(', ') || 'none'})` };
  }
  return { iface, address: addrs.includes(advertise) ? advertise : addrs[0]! };
}

/**
 * How a process on this host reaches an HTTP server bound to `host`:`port`: a wildcard bind is
 * reached on loopback; an IPv6 address goes in brackets. (The CLI, doctor and the serve marker.)
 */
export function localHttpUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}
