// The facts `genesis doctor` judges (checks.ts), read from this host: trial binds of the ports,
// interfaces, the kernel, the assets and data directories, the clock and the cluster CA.

import dgram from 'node:dgram';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { prepareWritableDir } from '../config/data-dir.ts';
import { readServeMarker, type ServeMarker } from '../config/serve-marker.ts';
import { talosAssetsPresent } from '../assets/fetch.ts';
import { rolesBootTalos } from '../provision/cloud-init.ts';
import { splitList, unknownEnvSettings, type Config } from '../config/config.ts';
import { FleetError, parseFleet } from '../fleet/parse.ts';
import { readFleetSource } from '../fleet/source.ts';
import { ipv4ByInterface, localHttpUrl, proxyDhcpAddress } from '../config/network.ts';
import { probeLan } from '../dhcp/lan-watch.ts';
import type { LanProbeResult } from '../dhcp/lan-probe.ts';
import { IPXE_BIOS, ipxeEfiPath, GRUB_NETBOOT_ARM64 } from '../ipxe/binaries.ts';
import { DB_FILE, Inventory, InventoryError } from '../inventory/store.ts';
import { osCA } from '../talos/secrets.ts';
import { readSecretsFile } from '../talos/secrets-store.ts';
import type { Node } from '../domain/node.ts';
import { loadSendfileAddon } from '../bulk/sendfile-addon.ts';
import { loadTftpPumpAddon } from '../tftp/native-pump.ts';
import type { Facts, PortFact } from './checks.ts';

/** This install's copy of scripts/copy-ipxe.sh, for a fix that works from any directory. */
const COPY_IPXE_SCRIPT = path.resolve(import.meta.dirname, '../../scripts/copy-ipxe.sh');
const BUILD_NATIVE_SCRIPT = path.resolve(import.meta.dirname, '../../scripts/build-native.sh');

/** `hidden`: the holder's sockets are visible, its process is not (another user's, or one holding capabilities this one lacks). */
export type PortHolder = { name: string; pid?: number; genesis: boolean; hidden?: NonNullable<PortFact['hidden']> };

/** The sockets bound to `port` in this network namespace: inode to owner uid (/proc/net). */
function socketsOnPort(proto: 'tcp' | 'udp', port: number): Map<string, number> {
  const sockets = new Map<string, number>();
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      // TCP: only listeners (state 0A); UDP has no states that matter here.
      if (proto === 'tcp' && cols[3] !== '0A') continue;
      if (parseInt(cols[1]!.split(':')[1]!, 16) === port) sockets.set(cols[9]!, Number(cols[7]));
    }
  }
  return sockets;
}

/** Does this command line run `genesis serve` (bin/genesis.js itself, or the `genesis` command that runs it: npm link, the image's wrapper)? */
function runsGenesisServe(cmdline: string[]): boolean {
  return cmdline.some((a) => /(^|\/)(bin\/genesis\.js|genesis)$/.test(a)) && cmdline.includes('serve');
}

/**
 * The processes this user can list, read once per doctor run however many ports it asks about:
 * which process holds each socket it can see, and each process's uid and command line.
 */
class ProcessTable {
  private readonly pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  private holders: Map<string, string> | undefined;
  private readonly uids = new Map<string, number | undefined>();
  private readonly cmdlines = new Map<string, string[] | undefined>();

  /** The process holding the socket with this inode, if this user may read that process's fds. */
  holderOf(inode: string): string | undefined {
    if (!this.holders) {
      this.holders = new Map();
      for (const pid of this.pids) {
        let fds: string[];
        try {
          fds = readdirSync(`/proc/${pid}/fd`);
        } catch {
          continue; // another user's, or one holding capabilities this one lacks
        }
        for (const fd of fds) {
          try {
            const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
            if (m && !this.holders.has(m[1]!)) this.holders.set(m[1]!, pid);
          } catch {
            // the process or fd went away
          }
        }
      }
    }
    return this.holders.get(inode);
  }

  /** The command line (undefined once the process has gone). */
  cmdline(pid: string): string[] | undefined {
    if (!this.cmdlines.has(pid)) {
      try {
        this.cmdlines.set(pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
      } catch {
        this.cmdlines.set(pid, undefined);
      }
    }
    return this.cmdlines.get(pid);
  }

  /** The real uid (/proc/<pid>/status is readable by every user, unlike its fds). */
  uid(pid: string): number | undefined {
    if (!this.uids.has(pid)) {
      try {
        const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        this.uids.set(pid, m ? Number(m[1]) : undefined);
      } catch {
        this.uids.set(pid, undefined);
      }
    }
    return this.uids.get(pid);
  }

  /** The `genesis serve` processes `uid` runs. */
  servesOf(uid: number): number[] {
    return this.pids.filter((pid) => this.uid(pid) === uid && runsGenesisServe(this.cmdline(pid) ?? [])).map(Number);
  }
}

/** The login name for a uid from /etc/passwd, if it has one (a minimal container may have none). */
function loginName(uid: number): string | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid));
    return line?.split(':')[0];
  } catch {
    return undefined;
  }
}

/**
 * Which process holds a port, from /proc (Linux; best effort). A process's fds are hidden from
 * another user, and from the same user when that process holds capabilities this one lacks (a
 * Genesis started by systemd with AmbientCapabilities=CAP_NET_BIND_SERVICE, doctor run by its user
 * from a shell). The socket's owner still shows: when the serve marker this user's `genesis serve`
 * left (serve-marker.ts) lists the port and names a live serve of that owner, that serve is the
 * holder; otherwise the holder is named by its user alone.
 */
export function portHolder(proto: 'tcp' | 'udp', port: number, marker: ServeMarker | undefined, table: ProcessTable): PortHolder | undefined {
  const sockets = socketsOnPort(proto, port);
  if (!sockets.size) return undefined;
  for (const inode of sockets.keys()) {
    const pid = table.holderOf(inode);
    const cmdline = pid === undefined ? undefined : table.cmdline(pid);
    if (pid === undefined || !cmdline) continue;
    const genesis = runsGenesisServe(cmdline);
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue; // gone
    }
    // Node names its main thread "MainThread" in comm; the command line says what it runs.
    const name = genesis ? 'genesis serve' : comm === 'MainThread' || comm === 'node' ? `node ${cmdline.slice(1).join(' ').slice(0, 60)}`.trim() : comm;
    return { name, pid: Number(pid), genesis };
  }
  const owners = new Set(sockets.values());
  if (marker?.ports?.some((p) => p.proto === proto && p.port === port)) {
    const pid = String(marker.pid);
    // A marker whose serve has exited is stale: its pid reads as no uid.
    if (owners.has(table.uid(pid) ?? -1) && runsGenesisServe(table.cmdline(pid) ?? [])) return { name: 'genesis serve', pid: marker.pid, genesis: true };
  }
  // Whose it is, and the serves that user runs: it is likely one of them (doctor run as another
  // user than Genesis's), but that cannot be seen from here.
  const uid = [...owners][0]!;
  const user = loginName(uid);
  const hidden = { uid, ...(user ? { user } : {}), serves: table.servesOf(uid), ...(uid === process.getuid?.() ? { sameUser: true } : {}) };
  return { name: `a process of ${user ? `${user} (uid ${uid})` : `uid ${uid}`} that this user cannot see`, genesis: false, hidden };
}

/** Does the Genesis at `base` answer /healthz? */
async function genesisHealthy(base: string): Promise<boolean> {
  try {
    const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

async function tryBind(proto: 'tcp' | 'udp', host: string, port: number, reuseAddr: boolean): Promise<PortFact['result']> {
  const verdict = (err: NodeJS.ErrnoException | undefined): PortFact['result'] => (!err ? 'free' : err.code === 'EACCES' || err.code === 'EPERM' ? 'no-permission' : 'in-use');
  if (proto === 'tcp') {
    return new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', (err) => resolve(verdict(err)));
      srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve('free')));
    });
  }
  return new Promise((resolve) => {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr });
    s.once('error', (err) => {
      s.close();
      resolve(verdict(err));
    });
    s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve('free')));
  });
}

export async function gatherPorts(c: Config): Promise<PortFact[]> {
  const wanted: Array<Omit<PortFact, 'result'> & { reuse: boolean; enabled: boolean }> = [
    { proto: 'tcp', host: c.http.host, port: c.http.port, purpose: 'HTTP', reuse: false, enabled: c.http.port !== 0 },
    { proto: 'udp', host: c.tftp.host, port: c.tftp.port, purpose: 'TFTP', reuse: false, enabled: c.tftp.enabled && c.tftp.port !== 0 },
    // Genesis binds these with SO_REUSEADDR; so does the trial, to judge what Genesis would meet.
    { proto: 'tcp', host: c.events.host, port: c.events.sink_port, purpose: 'Talos event sink', reuse: false, enabled: c.events.enabled && c.events.sink_port !== 0 },
    { proto: 'tcp', host: c.events.host, port: c.events.kernel_log_port, purpose: 'kernel-log receiver', reuse: false, enabled: c.events.enabled && c.events.kernel_log_port !== 0 },
    { proto: 'udp', host: '0.0.0.0', port: c.dhcp.port, purpose: 'proxyDHCP', reuse: true, enabled: c.dhcp.proxy && c.dhcp.port !== 0 },
    { proto: 'udp', host: '0.0.0.0', port: c.dhcp.pxe_port, purpose: 'proxyDHCP', reuse: true, enabled: c.dhcp.proxy && c.dhcp.pxe_port !== 0 },
  ];
  const out: PortFact[] = [];
  // Asked once, and only if one of the ports turns out to be held by a running Genesis.
  let healthy: Promise<boolean> | undefined;
  const marker = readServeMarker();
  // Read on the first port that needs it, then shared by the rest.
  let table: ProcessTable | undefined;
  for (const w of wanted) {
    if (!w.enabled) {
      out.push({ proto: w.proto, host: w.host, port: w.port, purpose: w.purpose, result: 'skipped' });
      continue;
    }
    const result = await tryBind(w.proto, w.host, w.port, w.reuse);
    // A port this user may not bind can still be held by the running Genesis (started as root, or
    // with the capability): then it is served, not a problem.
    // A port both bind with SO_REUSEADDR (the proxyDHCP's) binds beside the running Genesis too:
    // free to the trial, yet served by it.
    const held = result === 'in-use' || result === 'no-permission' || (w.reuse && result === 'free') ? portHolder(w.proto, w.port, marker, (table ??= new ProcessTable())) : undefined;
    const holder = result === 'free' && !held?.genesis ? undefined : held;
    const fact: PortFact = { proto: w.proto, host: w.host, port: w.port, purpose: w.purpose, result, holder: holder && (holder.pid ? `${holder.name} (pid ${holder.pid})` : holder.name) };
    if (holder?.hidden) fact.hidden = holder.hidden;
    if (holder?.genesis && holder.pid) {
      let cwd: string | undefined;
      try {
        cwd = readlinkSync(`/proc/${holder.pid}/cwd`);
      } catch {
        // another user's process, or gone
      }
      // Asked at its own address when it left one (serve-marker.ts): it may not use this configuration's port.
      healthy ??= genesisHealthy(marker?.pid === holder.pid ? marker.url : localHttpUrl(c.http.host, c.http.port));
      fact.genesis = { pid: holder.pid, healthy: await healthy, ...(cwd ? { cwd } : {}) };
    }
    out.push(fact);
  }
  return out;
}

function dataDirWritable(dir: string): Facts['dataDir'] {
  // Why not, in the words serve would use (read-only filesystem, a file in the way, an owner).
  const problem = prepareWritableDir(dir);
  if (problem) return { path: dir, writable: false, error: problem };
  try {
    const probe = path.join(dir, `.doctor-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
    return { path: dir, writable: true };
  } catch (err) {
    return { path: dir, writable: false, error: (err as Error).message };
  }
}

/** The inventory's nodes, read from the data dir (none before the first start). */
/** The inventory's nodes, read without migrating or writing; why they could not be read, if so. */
function nodesOnDisk(c: Config): { nodes: Node[]; problem?: string } {
  const db = path.join(c.data_dir, DB_FILE);
  if (!existsSync(db)) return { nodes: [] };
  let inv: Inventory;
  try {
    inv = Inventory.openReadOnly(db);
  } catch (err) {
    return { nodes: [], problem: err instanceof InventoryError ? err.message : `inventory ${db} cannot be read: ${(err as Error).message}` };
  }
  try {
    return { nodes: inv.list() };
  } catch (err) {
    return { nodes: [], problem: `inventory ${db} cannot be read: ${(err as Error).message}` };
  } finally {
    inv.close();
  }
}

/** Talos versions and arches in use: the default for the configured arches, and each assigned node's. */
function talosAssets(c: Config, nodes: Node[]): Facts['talosAssets'] {
  const wanted = new Set(splitList(c.assets.arches).map((a) => `${c.talos.version} ${a}`));
  for (const n of nodes) if (n.role !== 'unassigned' && n.state !== 'installed' && n.arch) wanted.add(`${n.talosVersion ?? c.talos.version} ${n.arch}`);
  return [...wanted].sort().map((w) => {
    const [version, arch] = w.split(' ') as [string, 'amd64' | 'arm64'];
    return { version, arch, present: talosAssetsPresent(c.assets_dir, version, arch) };
  });
}

/**
 * `nodes`: the inventory when the caller has it open (serve); otherwise it is read from disk.
 * `dataDir: false` skips the write probe (serve opens the inventory there anyway).
 */
/** Does the fleet file (fleet.path) parse? Undefined when none is set. */
function fleetFact(fleetPath: string): Facts['fleet'] {
  if (!fleetPath) return undefined;
  try {
    return { path: fleetPath, machines: parseFleet(readFleetSource(fleetPath)).machines.length, problems: [] };
  } catch (err) {
    if (err instanceof FleetError) return { path: fleetPath, machines: 0, problems: err.problems.map((p) => `${p.at}: ${p.message}`) };
    return { path: fleetPath, machines: 0, problems: [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`] };
  }
}

export async function gatherFacts(c: Config, opts: { advertiseAuto: boolean; ports: boolean; dataDir?: boolean; nodes?: Node[]; lan?: boolean }): Promise<Facts> {
  let kernel = '';
  try {
    kernel = readFileSync('/proc/version', 'utf8');
  } catch {
    // not Linux
  }
  let caValidity: Facts['caValidity'];
  try {
    const bundle = readSecretsFile(c.data_dir);
    if (bundle) {
      const ca = osCA(bundle).cert;
      caValidity = { notBefore: new Date(ca.validFrom), notAfter: new Date(ca.validTo) };
    }
  } catch {
    // an unreadable bundle is reported by serve itself
  }
  const onDisk = opts.nodes ? { nodes: opts.nodes } : nodesOnDisk(c);
  const nodes = onDisk.nodes;
  return {
    ports: opts.ports ? await gatherPorts(c) : [],
    lan: opts.lan ? await gatherLan(c) : undefined,
    advertiseAddr: c.advertise_addr,
    advertiseAuto: opts.advertiseAuto,
    interfaces: ipv4ByInterface(os.networkInterfaces()),
    kernel,
    inContainer: existsSync('/.dockerenv'),
    platform: process.platform,
    talosAssets: talosAssets(c, nodes),
    ipxeBinaries: [IPXE_BIOS, ipxeEfiPath('amd64')].map((name) => ({ name, present: existsSync(path.join(c.assets_dir, 'ipxe', name)) })),
    ipxeCopy: { dir: path.resolve(c.assets_dir, 'ipxe'), script: COPY_IPXE_SCRIPT },
    ipxeArm64: (() => {
      const machines = nodes.filter((n) => n.arch === 'arm64' && n.firmware === 'uefi' && n.state !== 'installed').map((n) => n.hostname ?? n.mac);
      // Either an arm64 iPXE or Debian's network GRUB (the fallback) lets them boot.
      return { present: existsSync(path.join(c.assets_dir, 'ipxe', ipxeEfiPath('arm64'))) || existsSync(path.join(c.assets_dir, GRUB_NETBOOT_ARM64)), wanted: splitList(c.assets.arches).includes('arm64') || machines.length > 0, machines };
    })(),
    dataDir: opts.dataDir === false ? { path: c.data_dir, writable: true } : dataDirWritable(c.data_dir),
    now: new Date(),
    caValidity,
    clusterEndpoint: c.cluster.endpoint || (c.cluster.vip ? `https://${c.cluster.vip}:6443` : ''),
    talosByDefault: rolesBootTalos(c.profiles),
    inventoryProblem: onDisk.problem,
    unknownEnv: unknownEnvSettings(process.env),
    cwd: process.cwd(),
    nodeVersion: process.versions.node,
    fleet: fleetFact(c.fleet.path),
    downloads: { bulkProcess: c.http.bulk_process, sendfile: c.http.sendfile, addonProblem: c.http.bulk_process && c.http.sendfile ? loadSendfileAddon().reason : undefined, buildScript: BUILD_NATIVE_SCRIPT },
    ...(c.tftp.enabled ? { tftpPump: { nativePump: c.tftp.native_pump, addonProblem: c.tftp.native_pump ? loadTftpPumpAddon().reason : undefined, buildScript: BUILD_NATIVE_SCRIPT } } : {}),
    heldNodes: nodes
      .filter((n) => (n.waiting || n.conflict) && n.role !== 'unassigned' && n.state !== 'installed')
      .map((n) => ({ mac: n.mac, hostname: n.hostname, reason: n.conflict ? `held: ${n.conflict}; confirm the real machine: genesis nodes confirm ${n.mac} <address>` : n.waiting! })),
  };
}

/**
 * Who answers a PXE DISCOVER on the proxyDHCP's interface. This command has no instance of its
 * own: a Genesis at one of this host's addresses counts as this host's (the running serve).
 */
async function gatherLan(c: Config): Promise<LanProbeResult> {
  const where = proxyDhcpAddress(c.dhcp.interface, c.advertise_addr, os.networkInterfaces());
  if ('problem' in where) return { probedAt: new Date().toISOString(), unavailable: where.problem };
  const addresses = [...ipv4ByInterface(os.networkInterfaces()).values()].flat();
  return probeLan({ address: where.address, self: { instance: '', cluster: c.cluster.name, addresses: [...addresses, c.advertise_addr] } });
}
