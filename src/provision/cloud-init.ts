// The cloud-init profile: which profile a machine boots with, whether it can boot with it now,
// its kernel command line, and serving its NoCloud datasource under the machine's config token:
//   GET  /cloud-init/<mac>/<token>/{meta-data,user-data,vendor-data,network-config}
//   POST /cloud-init/<mac>/<token>/phone-home   (cloud-init's phone_home module: installed)
// The token is the one Genesis issues with each install script (machine-config.ts's), so the
// install window, the address binding and the conflict rules are the same as for Talos configs.
// user-data carries the secrets (join and k3s tokens): serving it spends one of the token's
// fetches and moves the machine to `installing`, as a Talos config does. The other documents
// only check the token.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Arch, Node } from '../domain/node.ts';
import type { ConfigDenial, ConfigTokens, TokenInstallReports } from '../inventory/ports.ts';
import type { LinuxProfileCheck } from '../ipxe/plan.ts';
import { LogThrottle } from '../logging/throttle.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { datasourceProblems, renderCmdline, renderDocument, templateVars, type DatasourceFile } from '../cloud-init/documents.ts';
import { TALOS_PROFILE, type LinuxProfile, type ProfileSet } from '../cloud-init/profile.ts';
import { TemplateError } from '../cloud-init/template.ts';
import { checkBootToken, tokenSha256 } from './config-token-check.ts';

export type ProfileChoice = { default: string; controlplane: string; worker: string };

export type CloudInitOptions = {
  inventory: ConfigTokens & TokenInstallReports;
  profiles: () => ProfileSet;
  choice: ProfileChoice;
  cluster: string;
  baseUrl: () => string;
  joinToken: () => string;
  k3sToken: () => string;
  /** Are these files in assets/<profile>/<arch>/? Returns the missing ones. */
  missingAssets: (profile: string, arch: Arch, files: string[]) => string[];
  metrics?: Metrics;
  log: Logger;
};

export type DatasourceOutcome =
  | { outcome: 'served'; body: string }
  /** The profile has no such document (network-config is optional). */
  | { outcome: 'absent' }
  | { outcome: 'denied'; reason: ConfigDenial | 'bad-request' }
  | { outcome: 'unrenderable'; reason: string };

export type PhoneHomeOutcome = { outcome: 'installed' } | { outcome: 'denied'; reason: ConfigDenial | 'bad-request' };

/** What Linux boots: the kernel and initrd file names under assets/<profile>/<arch>/ and the arguments. */
export type LinuxBoot = { profile: string; kernel: string; initrd: string; args: string[] };

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const DUMMY_TOKEN = '0'.repeat(64);

/** The profile name a machine boots with: its own, else its role's, else the cluster's. */
export function profileName(node: Pick<Node, 'profile' | 'role'>, choice: ProfileChoice): string {
  if (node.profile) return node.profile;
  const byRole = node.role === 'controlplane' ? choice.controlplane : node.role === 'worker' ? choice.worker : '';
  return byRole || choice.default;
}

/**
 * Does a role boot Talos unless a machine says otherwise? Only then does the cluster need what
 * Talos configs need (cluster.endpoint); a k3s-only homelab does not.
 */
export function rolesBootTalos(choice: ProfileChoice): boolean {
  return (['controlplane', 'worker'] as const).some((role) => profileName({ profile: null, role }, choice) === TALOS_PROFILE);
}

export class CloudInitService {
  private readonly opts: CloudInitOptions;
  private readonly throttle: LogThrottle;

  constructor(o: CloudInitOptions) {
    this.opts = o;
    this.throttle = new LogThrottle(o.log);
  }

  /** The Linux profile a machine boots with, or undefined for Talos. */
  private chosen(node: Node): { name: string; profile?: LinuxProfile; broken?: string } | undefined {
    const name = profileName(node, this.opts.choice);
    if (name === TALOS_PROFILE) return undefined;
    const set = this.opts.profiles();
    return { name, profile: set.profiles.get(name), broken: set.broken.get(name) };
  }

  /** For the boot plan: undefined when the machine boots Talos; else whether it can boot its profile now. */
  check(node: Node): LinuxProfileCheck | undefined {
    const c = this.chosen(node);
    if (!c) return undefined;
    if (!c.profile) {
      const known = [TALOS_PROFILE, ...this.opts.profiles().profiles.keys()].join(', ');
      return { profile: c.name, kind: 'problem', detail: c.broken ? `profile ${c.name} does not load: ${c.broken}` : `profile ${c.name} is not defined (known: ${known})` };
    }
    if (node.arch) {
      const missing = this.opts.missingAssets(c.name, node.arch, [c.profile.kernel, c.profile.initrd]);
      if (missing.length) return { profile: c.name, kind: 'assets-missing', files: missing };
    }
    const problems = datasourceProblems(c.profile, this.vars(node, c.profile, DUMMY_TOKEN));
    if (problems.length) return { profile: c.name, kind: 'problem', detail: problems.slice(0, 5).join('; ') };
    return { profile: c.name, kind: 'ready' };
  }

  /** The kernel, initrd and arguments of an install with this boot's token (the plan said ready). */
  boot(node: Node, token: string): LinuxBoot {
    const c = this.chosen(node);
    if (!c?.profile) throw new Error(`node ${node.mac} has no Linux profile to boot`);
    return { profile: c.name, kernel: c.profile.kernel, initrd: c.profile.initrd, args: renderCmdline(c.profile, this.vars(node, c.profile, token)) };
  }

  private vars(node: Node, profile: LinuxProfile, token: string) {
    return templateVars({ node, profile, cluster: this.opts.cluster, genesisUrl: this.opts.baseUrl(), token, joinToken: this.opts.joinToken(), k3sToken: this.opts.k3sToken() });
  }

  private deny(reason: ConfigDenial | 'bad-request', mac: string | undefined, ip: string | undefined): { outcome: 'denied'; reason: ConfigDenial | 'bad-request' } {
    // As for Talos configs: the requester learns nothing, the operator gets the reason (never the token).
    this.opts.metrics?.refused('config', reason);
    this.throttle.note(`cloud-init-${reason}`, ip ?? 'unknown', { mac }, 'cloud-init datasource refused');
    return { outcome: 'denied', reason };
  }

  /** One document of the machine's datasource. */
  serve(mac: string | undefined, token: string, file: DatasourceFile, ip: string | undefined): DatasourceOutcome {
    const check = checkBootToken(this.opts.inventory, this.opts.log, mac, token, ip);
    if (!check.ok) return this.deny(check.reason, mac, ip);
    const { hash, node } = check;
    const c = this.chosen(node);
    // The machine was given this token for a Talos install (its profile changed since): nothing here is its.
    if (!c) return this.deny('wrong-token', mac, ip);
    // Only the document asked for: cloud-init asks for each in turn.
    let body: string | null;
    try {
      if (!c.profile) throw new TemplateError([c.broken ? `profile ${c.name} does not load: ${c.broken}` : `profile ${c.name} is not defined`]);
      body = renderDocument(c.profile, this.vars(node, c.profile, token), file);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      this.opts.log.error({ mac, ip, profile: c.name, problems: err.problems.slice(0, 20) }, 'cloud-init datasource not served: it cannot be rendered');
      this.opts.inventory.record(node.mac, 'config-failed', 'boot', { profile: c.name, file, reason: err.message.slice(0, 2000) });
      this.opts.metrics?.configOutcome('failed');
      return { outcome: 'unrenderable', reason: err.message };
    }
    if (body === null) return { outcome: 'absent' };
    if (file !== 'user-data') return { outcome: 'served', body };
    const spent = this.opts.inventory.consumeConfigToken(node.mac, hash, { ip, role: node.role, profile: c.name, file, sha256: sha256(body) }, ip);
    if (!spent.ok) return this.deny(spent.reason, mac, ip);
    this.opts.log.info({ mac, ip, role: node.role, profile: c.name, sha256: sha256(body), fetchesLeft: spent.fetchesLeft }, 'cloud-init user-data served');
    this.opts.metrics?.configOutcome('served');
    return { outcome: 'served', body };
  }

  /** cloud-init's phone_home on `final`: the machine is installed. */
  phoneHome(mac: string | undefined, token: string, ip: string | undefined, report: Record<string, string>): PhoneHomeOutcome {
    if (!mac || !/^[0-9a-f]{64}$/.test(token)) return this.deny('bad-request', mac, ip);
    // Only what identifies the instance is kept; the report can carry host keys and more.
    const detail = { via: 'cloud-init phone-home', ip, ...(report['instance_id'] ? { instanceId: report['instance_id'].slice(0, 128) } : {}), ...(report['hostname'] ? { hostname: report['hostname'].slice(0, 253) } : {}) };
    const r = this.opts.inventory.reportInstalledWithToken(mac, tokenSha256(token), ip, detail);
    if (!r.ok) return this.deny(r.reason, mac, ip);
    this.opts.log.info({ mac, ip }, 'cloud-init reported the install finished: the machine boots from its disk from now on');
    return { outcome: 'installed' };
  }
}
