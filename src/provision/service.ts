// The boot conversation with one machine: record what it reports, decide its next step, and
// render the iPXE script for it. The HTTP handler and the TFTP virtual file both call this, so
// the two transports cannot drift apart.

import type { Logger } from 'pino';
import type { Arch, BootFacts, Node } from '../domain/node.ts';
import { normalizeMac } from '../domain/mac.ts';
import { InventoryError, storageFailureMessage } from '../inventory/errors.ts';
import { FileUnavailable } from '../tftp/provider.ts';
import type { BootRecord, BootRecorder } from '../inventory/ports.ts';
import { conflictText, type BootAccess } from '../inventory/install-window.ts';
import { archFromIpxe, firmwareFromIpxe, holdReason, planBoot, type BootPlan, type WindowHold } from '../ipxe/plan.ts';
import { LogThrottle } from '../logging/throttle.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { RateLimiter } from '../net/rate-limiter.ts';
import type { BootSteps } from './boot-steps.ts';
import type { CloudInitService, LinuxBoot } from './cloud-init.ts';
import { renderEntryScript, renderNodeScript } from '../ipxe/script.ts';
import { encodeScriptImage } from '../uboot/script-image.ts';
import { renderPxelinuxConfig, renderPxelinuxLinuxConfig, renderUbootBootScript, renderUbootMachineScript } from '../uboot/script.ts';
import { renderGrubBootstrap, renderGrubMachineConfig } from '../grub/config.ts';

/** What the boot conversation needs of the machine configs: why one would not render, and a token for its URL. */
export type ConfigIssuer = {
  renderer: { problem(node: Node): string | undefined };
  issueToken(mac: string, ip?: string): string;
};

export type BootServiceOptions = {
  inventory: BootRecorder;
  configs: ConfigIssuer;
  /** http://<advertise_addr>:<port>, no trailing slash. */
  baseUrl: () => string;
  defaultTalosVersion: string;
  retrySeconds: number;
  extraKernelArgs: string[];
  /** Are this Talos version's kernel and initramfs in place? */
  assetsPresent: (version: string, arch: Arch) => boolean;
  /** New MACs recorded from one address per minute; beyond, refused (known machines unaffected). */
  discoveryPerMinute?: number;
  /** Machines the inventory holds at most; a new MAC beyond is refused. */
  maxNodes?: number;
  metrics?: Metrics;
  /** Machines whose profile is not Talos (provision/cloud-init.ts); absent: every machine boots Talos. */
  linux?: Pick<CloudInitService, 'check' | 'boot'>;
  /** Told when a machine is first recorded, so the steps it took before are written to its history. */
  steps?: Pick<BootSteps, 'discovered'>;
  log: Logger;
};


/** What iPXE reports about itself in the per-machine request (raw query values). */
export type IpxeIdentity = {
  mac?: string;
  buildarch?: string;
  platform?: string;
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
};

/** One turn of the boot conversation: a refusal, or the machine, its plan and, for an install, its token's URL. */
type Turn = ({ refused: 'rate' | 'full' } | { refused?: undefined; node: Node; plan: BootPlan }) & { configUrl?: string; linux?: LinuxBoot };

/**
 * What a machine's script request comes to (http/boot.ts says it in HTTP): its iPXE script; a
 * request without a valid MAC, answered with a script that says so; or an installed machine whose
 * local-boot mode is `http404`, which leaves iPXE for the disk when the request fails.
 */
export type NodeScriptOutcome = { outcome: 'script'; script: string } | { outcome: 'no-mac'; script: string } | { outcome: 'local-disk' };

/** SMBIOS strings are free text from the vendor; keep what fits in a record and drop the rest. */
function smbios(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  // eslint-disable-next-line no-control-regex -- stripping control characters is the point
  const s = v.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 128);
  // Placeholders firmware vendors ship instead of real values.
  if (s === '' || /^(to be filled by o\.e\.m\.|default string|not specified|none|0+|00000000-0000-0000-0000-000000000000)$/i.test(s)) return undefined;
  return s;
}

/** Why the install window holds a machine whose access does not allow an installer, or undefined. */
function windowHold(access: BootAccess, node: Node): WindowHold | undefined {
  if (access.kind === 'conflict') return { reason: 'conflict', detail: conflictText(access.addresses) };
  if (access.kind === 'held') return { reason: 'conflict', detail: node.conflict ?? 'two machines claim this MAC' };
  if (access.kind === 'closed') return { reason: 'window-closed' };
  return undefined;
}

export class BootService {
  private readonly opts: BootServiceOptions;
  private readonly discovery: RateLimiter;
  private readonly throttle: LogThrottle;

  constructor(o: BootServiceOptions) {
    this.opts = o;
    this.discovery = new RateLimiter(o.discoveryPerMinute ?? 30, 60_000);
    this.throttle = new LogThrottle(o.log);
  }

  private refuseDiscovery(mac: string, ip: string, why: 'rate' | 'full'): void {
    this.opts.metrics?.refused('boot', why === 'rate' ? 'discovery-rate' : 'inventory-full');
    const message =
      why === 'rate'
        ? 'a new machine was not recorded: too many new MACs from this address (inventory.discovery_per_minute)'
        : 'a new machine was not recorded: the inventory is full (inventory.max_nodes); known machines are unaffected';
    this.throttle.note(`discovery-${why}`, ip, { mac }, message);
  }

  entryScript(): string {
    return renderEntryScript(this.opts.baseUrl());
  }

  /** Talos fetches its machine config here: the MAC and a fresh single-node token written in by us. */
  configUrl(mac: string, token: string): string {
    return `${this.opts.baseUrl()}/talos/config/${mac}/${token}`;
  }

  /**
   * One turn of the conversation, whatever the transport: record what the machine reported,
   * apply the install window, decide its plan, note why it waits. `refused`: a new MAC that was
   * not recorded (discovery rate or a full inventory).
   */
  private converse(mac: string, facts: BootFacts, ip: string | undefined): { refused: 'rate' | 'full' } | { refused?: undefined; node: Node; plan: BootPlan } {
    // Discovery of unknown MACs is what an unauthenticated flood can grow without bound: per
    // address it is rate-limited, in total capped. Known machines are never affected. Whether the
    // MAC is known is asked only once the address has no discovery left: a known machine's
    // request reads its row once, in recordBoot, and a new one spends its discovery there below
    // (nothing runs in between: this is one synchronous turn).
    if (ip !== undefined && !this.discovery.available(ip) && !this.opts.inventory.get(mac)) {
      this.refuseDiscovery(mac, ip, 'rate');
      return { refused: 'rate' };
    }
    let recorded: BootRecord;
    try {
      recorded = this.opts.inventory.recordBoot(mac, facts, { maxNodes: this.opts.maxNodes });
    } catch (err) {
      if (err instanceof InventoryError && err.code === 'full') {
        this.refuseDiscovery(mac, ip ?? 'unknown', 'full');
        return { refused: 'full' };
      }
      throw err;
    }
    const { node, created, access } = recorded;
    if (created) {
      if (ip !== undefined) this.discovery.take(ip);
      this.opts.log.info({ mac, arch: node.arch, firmware: node.firmware, role: node.role, ip }, 'new machine discovered');
      this.opts.steps?.discovered(mac, ip);
    }
    if (access.kind === 'conflict') {
      this.opts.metrics?.refused('boot', 'conflict');
      this.opts.log.warn({ mac, addresses: access.addresses }, 'two machines claim one MAC inside its install window: nothing is served to either until the operator confirms one (genesis nodes confirm)');
    }
    const plan = planBoot(node, this.opts.defaultTalosVersion, this.opts.assetsPresent, (n) => this.opts.configs.renderer.problem(n), windowHold(access, node), (n) => this.opts.linux?.check(n));
    // An installed machine's record is not touched by an unauthenticated request, not even to note it asked.
    if (access.kind !== 'frozen') {
      const hold = holdReason(plan);
      // Written and logged when the reason changes, not on every retry of a waiting machine.
      if (hold !== node.waiting) {
        this.opts.inventory.setWaiting(mac, hold);
        if (hold) this.opts.log.warn({ mac, reason: hold }, 'an assigned machine is held back from installing');
        else if (node.waiting) this.opts.log.info({ mac, was: node.waiting }, 'a held machine may go ahead');
      }
      // A waiting machine asks every few seconds; last_seen shows that, the event log need not.
      if (plan.kind !== 'wait') {
        this.opts.inventory.record(mac, 'script-served', 'boot', {
          plan: plan.kind,
          ...('mode' in plan ? { mode: plan.mode } : {}),
          ...('talosVersion' in plan ? { talosVersion: plan.talosVersion } : {}),
          ...('profile' in plan ? { profile: plan.profile } : {}),
        });
      }
    }
    return { node, plan };
  }

  /**
   * converse(), and for an install plan a fresh config token. Every caller runs it as its part of
   * a shared transaction (atomicallyShared): one commit for the boot requests of the moment,
   * however many facts each records, and an answer only once that commit is made. Rendering
   * happens after, outside it.
   */
  private turn(mac: string, facts: BootFacts, ip: string | undefined): Turn {
    const turn = this.converse(mac, facts, ip);
    if (turn.refused) return turn;
    // Only an install script carries a token (a config URL, or a cloud-init datasource URL).
    if (turn.plan.kind === 'install') return { ...turn, configUrl: this.configUrl(mac, this.opts.configs.issueToken(mac, ip)) };
    if (turn.plan.kind === 'install-linux' && this.opts.linux) return { ...turn, linux: this.opts.linux.boot(turn.node, this.opts.configs.issueToken(mac, ip)) };
    return turn;
  }

  /** boot.scr.uimg: the same loop for every U-Boot board (see uboot/script.ts). */
  ubootBootScript(): Buffer {
    return encodeScriptImage(renderUbootBootScript(this.opts.retrySeconds), { name: 'genesis boot' });
  }

  /**
   * genesis/<mac>.scr.uimg: what this U-Boot board does now. U-Boot reports no architecture in
   * its TFTP requests; Genesis's boot script is an arm64 image and Talos has no 32-bit arm build,
   * so a board that runs it is recorded as arm64.
   */
  async ubootMachineScript(mac: string, ip: string | undefined): Promise<Buffer> {
    const turn = await this.tftpTurn(() => this.converse(mac, { arch: 'arm64', firmware: 'u-boot', ip }, ip));
    const script = turn.refused
      ? `echo "Genesis: not recording ${mac}: ${turn.refused === 'rate' ? 'too many new machines from this address' : 'the inventory is full'}"\n`
      : renderUbootMachineScript({ plan: turn.plan, mac, hostname: turn.node.hostname });
    return encodeScriptImage(script, { name: `genesis ${mac}` });
  }

  /**
   * pxelinux.cfg/01-<mac>: the install entry `pxe get` reads, with a fresh config token. Only a
   * machine whose plan is an install gets one; for any other, not found (U-Boot then tries its
   * other names and its boot script decides).
   */
  async pxelinuxConfig(mac: string, ip: string | undefined): Promise<Buffer | undefined> {
    const turn = await this.tftpTurn(() => this.turn(mac, { arch: 'arm64', firmware: 'u-boot', ip }, ip));
    if (turn.refused) return undefined;
    if (turn.plan.kind === 'install-linux' && turn.linux) {
      return Buffer.from(renderPxelinuxLinuxConfig({ profile: turn.linux.profile, arch: turn.plan.arch, kernel: turn.linux.kernel, initrd: turn.linux.initrd, args: turn.linux.args }));
    }
    if (turn.plan.kind !== 'install') return undefined;
    const plan = turn.plan;
    return Buffer.from(renderPxelinuxConfig({ talosVersion: plan.talosVersion, arch: plan.arch, configUrl: turn.configUrl!, extraKernelArgs: this.opts.extraKernelArgs }));
  }

  /**
   * A TFTP file's turn, as its part of the shared commit. A storage failure (a full or failing
   * data disk) becomes FileUnavailable: the board is told in one line what failed and that nothing
   * changed, as an HTTP client is (http/errors.ts), and asks again on its own.
   */
  private async tftpTurn<T>(fn: () => T): Promise<T> {
    try {
      return await this.opts.inventory.atomicallyShared(fn);
    } catch (err) {
      // The store has already given SQLite's codes its own terms (inventory/database.ts).
      if (err instanceof InventoryError && err.isStorageFailure) throw new FileUnavailable(storageFailureMessage(err));
      throw err;
    }
  }

  /** grub/grub.cfg: the same loop for every machine GRUB boots (see grub/config.ts). */
  grubBootstrap(): Buffer {
    return Buffer.from(renderGrubBootstrap(this.opts.retrySeconds));
  }

  /**
   * grub/genesis/<mac>.cfg: what this machine does now, with a fresh config token for an install.
   * Genesis hands out only the arm64 GRUB image (x86 firmware gets iPXE), so a machine that asks
   * is recorded as arm64 UEFI.
   */
  async grubMachineConfig(mac: string, ip: string | undefined): Promise<Buffer> {
    const turn = await this.tftpTurn(() => this.turn(mac, { arch: 'arm64', firmware: 'uefi', ip }, ip));
    const config = turn.refused
      ? `echo "Genesis: not recording ${mac}: ${turn.refused === 'rate' ? 'too many new machines from this address' : 'the inventory is full'}"\n`
      : renderGrubMachineConfig({ plan: turn.plan, mac, hostname: turn.node.hostname, configUrl: turn.configUrl, extraKernelArgs: this.opts.extraKernelArgs, linux: turn.linux });
    return Buffer.from(config);
  }

  /**
   * iPXE's per-machine script. Its transaction is shared with the other requests of the moment
   * (one commit for a burst of machines); the script is answered once that has committed.
   */
  async nodeScript(id: IpxeIdentity, ip: string | undefined): Promise<NodeScriptOutcome> {
    const mac = id.mac === undefined ? undefined : normalizeMac(id.mac);
    if (!mac) {
      return { outcome: 'no-mac', script: `#!ipxe\necho Genesis: the request carried no valid MAC address\nexit 1\n` };
    }
    const facts: BootFacts = {
      arch: archFromIpxe(id.buildarch),
      firmware: firmwareFromIpxe(id.platform),
      uuid: smbios(id.uuid)?.toLowerCase(),
      serial: smbios(id.serial),
      manufacturer: smbios(id.manufacturer),
      product: smbios(id.product),
      ip,
    };
    const turn = await this.opts.inventory.atomicallyShared(() => this.turn(mac, facts, ip));
    if (turn.refused) return { outcome: 'script', script: `#!ipxe\necho Genesis: not recording ${mac}: ${turn.refused === 'rate' ? 'too many new machines from this address' : 'the inventory is full'}.\nsleep 60\nexit 1\n` };
    const { node, plan } = turn;
    if (plan.kind === 'local' && plan.mode === 'http404') {
      return { outcome: 'local-disk' };
    }
    const script = renderNodeScript({
      plan,
      baseUrl: this.opts.baseUrl(),
      mac,
      hostname: node.hostname,
      retrySeconds: this.opts.retrySeconds,
      configUrl: turn.configUrl,
      extraKernelArgs: this.opts.extraKernelArgs,
      linux: turn.linux,
    });
    return { outcome: 'script', script };
  }
}
