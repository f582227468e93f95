// One observer for the boot steps seen outside the boot script: the proxyDHCP's answers, TFTP
// downloads and asset downloads report here, typed, and this is where they are attributed to a
// machine, recorded on its history and counted. (The script and the config are recorded by the
// boot conversation and the config service, inside the transaction that decides them.)
//
// A first boot happens before the machine is known: its DHCP request and its iPXE download come
// before its first script request creates the record. Those steps are held here, by MAC or by
// address, for a few minutes; when the script request records the machine (`discovered`), they are
// written to its history with their own times, so its timeline starts where the boot started.
// Held steps are bounded (addresses, steps each, minutes), so a stranger's traffic costs little
// and is never stored unless the stranger boots.

import type { Logger } from 'pino';
import type { EventType } from '../domain/node.ts';
import type { ProxyAnswer } from '../dhcp/proxy.ts';
import type { HistoryWriter, NodeReader, ObservationWriter } from '../inventory/ports.ts';
import { LogThrottle } from '../logging/throttle.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { TransferSummary } from '../tftp/server.ts';
import { ChainloadLoopDetector } from './chainload-loop.ts';

/** What the observer needs of the inventory. */
export type BootStepStore = Pick<NodeReader, 'byIp'> &
  HistoryWriter &
  ObservationWriter & {
    setWaiting(mac: string, reason: string | null): void;
    /** An address seen on the PXE port: checked (and bound) against the install window. */
    noteBootAddress(mac: string, ip: string): void;
  };

/** The Talos asset a download was, as the asset route resolved it. */
export type AssetKind = 'kernel' | 'initramfs' | 'asset';

type HeldStep = { type: EventType; detail: Record<string, unknown>; at: string };

export type BootStepsOptions = {
  inventory: BootStepStore;
  metrics?: Metrics;
  log: Logger;
  now?: () => number;
  /** How long steps of a machine not yet known are held (ms). */
  holdMs?: number;
  /** How many unknown MACs and addresses are held at most; the oldest goes first. */
  maxHeld?: number;
  /** Steps held per MAC or address. */
  maxStepsEach?: number;
};

export class BootSteps {
  private readonly opts: BootStepsOptions;
  private readonly now: () => number;
  private readonly loops = new ChainloadLoopDetector();
  private readonly ubootSeen: LogThrottle;
  /** Keyed `mac <mac>` or `ip <address>`, in the order first held. */
  private readonly held = new Map<string, { since: number; steps: HeldStep[] }>();

  constructor(o: BootStepsOptions) {
    this.opts = o;
    this.now = o.now ?? Date.now;
    this.ubootSeen = new LogThrottle(o.log);
  }

  /** The proxyDHCP answered (or ignored) a request; `from` is the sender's address. */
  dhcp(answer: ProxyAnswer | 'malformed', port: 'dhcp' | 'pxe', from: string): void {
    this.opts.metrics?.dhcpAnswer(answer);
    if (answer === 'malformed') return;
    if (answer.kind === 'ignore') {
      if (!answer.uboot || !answer.mac) return;
      // Once a minute per board: the operator learns why the board never got an answer from us.
      this.ubootSeen.note('uboot-dhcp', answer.mac, { mac: answer.mac, from }, `a U-Boot board asked for DHCP: ${answer.reason} (docs/router-recipes.md: U-Boot boards)`);
      this.step({ mac: answer.mac }, 'dhcp-offered', { client: 'u-boot', answered: false, port });
      return;
    }
    this.step({ mac: answer.mac }, 'dhcp-offered', { client: answer.client, arch: answer.arch, bootfile: answer.bootfile, port });
    // On the PXE port the request comes from the machine's own lease: inside an install window
    // that address is checked (and bound) like a boot-script request's.
    if (port === 'pxe') this.safely('check a PXE request against the install window', () => this.opts.inventory.noteBootAddress(answer.mac, from));
  }

  /** A TFTP transfer ended; `ip` is the client's address. */
  tftp(t: TransferSummary, ip: string): void {
    this.opts.metrics?.tftpTransfer(t);
    if (t.outcome !== 'ok') return;
    // The negotiated options and the retransmissions: what made a slow transfer slow, on the timeline.
    this.step({ ip }, 'tftp-served', { file: t.file, bytes: t.bytes, durationMs: t.durationMs, blksize: t.blksize, windowsize: t.windowsize, retransmits: t.retransmits });
    const warning = this.loops.observe(ip, t.file, this.now());
    if (!warning) return;
    this.opts.log.warn({ client: ip, file: t.file }, warning);
    // A known machine's record says so too (the dashboard's "iPXE loop" badge); reaching its
    // boot script clears it, as for any other hold.
    this.safely('record the iPXE loop on the node', () => {
      const mac = this.opts.inventory.byIp(ip)?.mac;
      if (mac) this.opts.inventory.setWaiting(mac, warning);
    });
  }

  /** A whole Talos asset went to `ip`. */
  asset(ip: string, kind: AssetKind, detail: { path: string; status: number }): void {
    this.step({ ip }, 'asset-fetched', { ...detail, asset: kind });
  }

  /** The boot conversation recorded a new machine: its held steps go to its history. */
  discovered(mac: string, ip: string | undefined): void {
    const steps = [...this.take(`mac ${mac}`), ...(ip ? this.take(`ip ${ip}`) : [])].sort((a, b) => a.at.localeCompare(b.at));
    if (!steps.length) return;
    this.safely('record the steps before discovery', () => {
      for (const s of steps) this.opts.inventory.record(mac, s.type, 'boot', s.detail, s.at);
    });
  }

  /** How many MACs and addresses have steps held (for tests and the bound). */
  get heldCount(): number {
    return this.held.size;
  }

  private step(who: { mac: string } | { ip: string }, type: EventType, detail: Record<string, unknown>): void {
    this.safely('record a boot step', () => {
      const mac = this.opts.inventory.observedMac(who);
      // An observation: it shares a commit with the steps around it (the inventory's group commit).
      if (mac) this.opts.inventory.recordSoon(mac, type, 'boot', detail);
      else this.hold('mac' in who ? `mac ${who.mac}` : `ip ${who.ip}`, { type, detail, at: new Date(this.now()).toISOString() });
    });
  }

  private hold(key: string, step: HeldStep): void {
    const now = this.now();
    const holdMs = this.opts.holdMs ?? 300_000;
    for (const [k, v] of this.held) {
      if (now - v.since < holdMs) break;
      this.held.delete(k);
    }
    let entry = this.held.get(key);
    if (!entry) {
      if (this.held.size >= (this.opts.maxHeld ?? 1024)) this.held.delete(this.held.keys().next().value!);
      entry = { since: now, steps: [] };
      this.held.set(key, entry);
    }
    if (entry.steps.length < (this.opts.maxStepsEach ?? 16)) entry.steps.push(step);
  }

  private take(key: string): HeldStep[] {
    const entry = this.held.get(key);
    this.held.delete(key);
    if (!entry || this.now() - entry.since >= (this.opts.holdMs ?? 300_000)) return [];
    return entry.steps;
  }

  /** A step that cannot be recorded never fails the transfer or the answer it describes. */
  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, `could not ${what}`);
    }
  }
}
