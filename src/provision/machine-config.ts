// Serving machine configs: the single-node token written into the install script, its check when
// Talos fetches the config, and the record of what happened. Rendering is config-renderer.ts's.

import type { Logger } from 'pino';
import { LogThrottle } from '../logging/throttle.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Node } from '../domain/node.ts';
import type { ConfigDenial, ConfigTokens } from '../inventory/ports.ts';
import { RenderError } from '../talos/render.ts';
import type { ConfigRenderer, ServedConfig } from './config-renderer.ts';
import { checkBootToken, tokenSha256 } from './config-token-check.ts';
import { TokenPool } from './token-pool.ts';

export type MachineConfigOptions = {
  inventory: ConfigTokens;
  renderer: Pick<ConfigRenderer, 'renderServed'>;
  defaultTalosVersion: string;
  tokenTtlMs: number;
  tokenFetches: number;
  metrics?: Metrics;
  log: Logger;
};

/**
 * What a config request comes to, in the provisioning's terms (http/talos.ts says it in HTTP).
 * `denied`: the requester learns nothing more than that; the reason is for the log and metrics.
 */
export type ConfigOutcome = { outcome: 'served'; yaml: string } | { outcome: 'denied'; reason: ConfigDenial | 'bad-request' } | { outcome: 'unrenderable'; reason: string };


export class MachineConfigService {
  private readonly opts: MachineConfigOptions;
  private readonly throttle: LogThrottle;
  private readonly lastEvent = new Map<string, number>();
  private readonly random = new TokenPool();

  constructor(o: MachineConfigOptions) {
    this.opts = o;
    this.throttle = new LogThrottle(o.log);
  }

  /** A fresh token for a node's install script, bound to the address the script goes to; only its hash is stored. Hex: safe in iPXE and on a kernel command line. */
  issueToken(mac: string, ip?: string): string {
    const token = this.random.nextHex();
    this.opts.inventory.issueConfigToken(mac, tokenSha256(token), this.opts.tokenTtlMs, this.opts.tokenFetches, ip ?? null);
    return token;
  }

  /**
   * A config request with the node's MAC and token: its config, a denial, or a config that cannot
   * be rendered yet. The check, the render and the spent fetch are one transaction, shared with
   * the other requests of the moment; the answer (and its log line and metric) waits for its commit.
   */
  async serve(mac: string | undefined, token: string, ip: string | undefined): Promise<ConfigOutcome> {
    const { outcome, report } = await this.opts.inventory.atomicallyShared(() => this.decide(mac, token, ip));
    report();
    return outcome;
  }

  /** Inside the transaction: what to answer, and what to log and count once it has committed. */
  private decide(mac: string | undefined, token: string, ip: string | undefined): { outcome: ConfigOutcome; report: () => void } {
    const deny = (reason: ConfigDenial | 'bad-request', node?: Node) => {
      // The requester learns nothing; the operator gets the reason (never the token), summarised
      // when it repeats, so bad-token floods neither fill the log nor push a node's history out.
      if (node && this.eventDue(`${node.mac} ${reason}`)) this.opts.inventory.record(node.mac, 'config-denied', 'boot', { reason, ip });
      const report = () => {
        this.opts.metrics?.refused('config', reason);
        this.opts.metrics?.configOutcome('refused');
        this.throttle.note(`config-${reason}`, ip ?? 'unknown', { mac }, 'machine config refused');
      };
      return { outcome: { outcome: 'denied', reason } as const, report };
    };
    const check = checkBootToken(this.opts.inventory, this.opts.log, mac, token, ip);
    if (!check.ok) return deny(check.reason, check.node);
    const { hash, node } = check;

    let rendered: ServedConfig;
    try {
      rendered = this.opts.renderer.renderServed(check.node);
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      this.opts.inventory.record(node.mac, 'config-failed', 'boot', { reason: err.message, problems: err.problems.slice(0, 20) });
      const report = () => {
        this.opts.log.error({ mac, ip, problems: err.problems.length ? err.problems : undefined, reason: err.message }, 'machine config not served: it cannot be rendered');
        this.opts.metrics?.configOutcome('failed');
      };
      return { outcome: { outcome: 'unrenderable', reason: err.message }, report };
    }
    const spent = this.opts.inventory.consumeConfigToken(
      node.mac,
      hash,
      {
        ip,
        role: check.node.role,
        talosVersion: check.node.talosVersion ?? this.opts.defaultTalosVersion,
        sha256: rendered.sha256,
        // Deprecated fields and moved settings, on the node's timeline where the operator looks.
        ...(rendered.warnings.length ? { warnings: rendered.warnings } : {}),
      },
      ip,
    );
    if (!spent.ok) return deny(spent.reason, spent.node);
    const report = () => {
      this.opts.log.info({ mac, ip, role: check.node.role, sha256: rendered.sha256, fetchesLeft: spent.fetchesLeft }, 'machine config served');
      this.opts.metrics?.configOutcome('served');
    };
    return { outcome: { outcome: 'served', yaml: rendered.yaml }, report };
  }

  /** At most one recorded event per key a minute: refusals repeat, the node's history must not fill with them. */
  private eventDue(key: string): boolean {
    const now = Date.now();
    const last = this.lastEvent.get(key);
    if (last !== undefined && now - last < 60_000) return false;
    if (this.lastEvent.size >= 10_000) this.lastEvent.clear();
    this.lastEvent.set(key, now);
    return true;
  }
}
