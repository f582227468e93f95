// What Genesis serves a cloud-init machine, rendered from its profile and its inventory record.
// Pure: plain values in, text out; every document is checked before it is returned.

import { blankNode, type Node } from '../domain/node.ts';
import { isKernelWord, KERNEL_WORD_CHARS } from '../ipxe/word.ts';
import { cloudConfigProblems } from './user-data-schema.ts';
import type { LinuxProfile } from './linux-profile.ts';
import { renderYamlTemplate, TemplateError, type TemplateVars } from './template.ts';

export const DATASOURCE_FILES = ['meta-data', 'user-data', 'vendor-data', 'network-config'] as const;
export type DatasourceFile = (typeof DATASOURCE_FILES)[number];

export type NodeVarsInput = {
  node: Node;
  profile: LinuxProfile;
  cluster: string;
  /** http://<advertise_addr>:<port>, no trailing slash. */
  genesisUrl: string;
  /** The machine's config token for this boot (hex). */
  token: string;
  joinToken: string;
  k3sToken: string;
};

/** The host name a machine without one is given: stable, and a valid DNS label. */
export function defaultHostname(mac: string): string {
  return `node-${mac.replace(/:/g, '')}`;
}

/** The variables every template of the profile may use (docs/cloud-init.md lists them). */
export function templateVars(i: NodeVarsInput): TemplateVars {
  const { node } = i;
  const datasource = `${i.genesisUrl}/cloud-init/${node.mac}/${i.token}/`;
  const [address, prefix] = node.network?.address.split('/') ?? ['', ''];
  const vars: Record<string, TemplateVars[string]> = {
    hostname: node.hostname ?? defaultHostname(node.mac),
    mac: node.mac,
    arch: node.arch ?? '',
    role: node.role,
    profile: i.profile.name,
    cluster_name: i.cluster,
    ip: node.lastIp ?? '',
    address: address ?? '',
    prefix: prefix ?? '',
    gateway: node.network?.gateway ?? '',
    nameservers: node.network?.nameservers ?? [],
    labels: node.labels,
    node_labels: Object.entries(node.labels).map(([k, v]) => `${k}=${v}`),
    ssh_authorized_keys: i.profile.sshAuthorizedKeys,
    genesis_url: i.genesisUrl,
    datasource_url: datasource,
    phone_home_url: `${datasource}phone-home`,
    claim_url: `${i.genesisUrl}/api/v1/bootstrap/claim`,
    leader_url: `${i.genesisUrl}/api/v1/bootstrap/leader`,
    join_token: i.joinToken,
    k3s_token: i.k3sToken,
    k3s_mode: node.role === 'worker' ? 'agent' : 'server',
    instance_id: instanceId(node.mac, i.token),
  };
  for (const [k, v] of Object.entries(i.profile.vars)) vars[`vars.${k}`] = v;
  return vars;
}

/**
 * Per boot: the token is new each boot, so cloud-init runs its per-instance modules again on a
 * machine that netboots again (it has no disk state to compare with). Not the token itself: the
 * instance id lands in logs and on disk.
 */
export function instanceId(mac: string, token: string): string {
  return `genesis-${mac.replace(/:/g, '')}-${token.slice(0, 12)}`;
}

export function renderUserData(profile: LinuxProfile, vars: TemplateVars): string {
  const r = renderYamlTemplate(profile.userData, vars, { name: `${profile.name} user-data`, header: '#cloud-config' });
  const problems = cloudConfigProblems(r.document);
  if (problems.length) throw new TemplateError(problems.map((p) => `${profile.name} user-data: cloud-init's schema: ${p}`));
  return r.text;
}

export function renderMetaData(vars: TemplateVars): string {
  // Written by the YAML library too: a host name is checked, but nothing here is pasted as text.
  return renderYamlTemplate('instance-id: {{ instance_id }}\nlocal-hostname: {{ hostname }}\n', vars, { name: 'meta-data' }).text;
}

export function renderNetworkConfig(profile: LinuxProfile, vars: TemplateVars): string | null {
  if (profile.networkConfig === null) return null;
  const r = renderYamlTemplate(profile.networkConfig, vars, { name: `${profile.name} network-config` });
  const doc = r.document as { version?: unknown; network?: { version?: unknown } } | null;
  const version = doc?.network?.version ?? doc?.version;
  if (version !== 1 && version !== 2) throw new TemplateError([`${profile.name} network-config: needs version: 1 or 2 (at the top, or under network:)`]);
  return r.text;
}

export function renderVendorData(profile: LinuxProfile, vars: TemplateVars): string {
  if (profile.vendorData === null) return '#cloud-config\n{}\n';
  const r = renderYamlTemplate(profile.vendorData, vars, { name: `${profile.name} vendor-data`, header: '#cloud-config' });
  const problems = cloudConfigProblems(r.document);
  if (problems.length) throw new TemplateError(problems.map((p) => `${profile.name} vendor-data: cloud-init's schema: ${p}`));
  return r.text;
}

/** One document of the datasource (null: the profile has none, as network-config may be). Throws TemplateError. */
export function renderDocument(profile: LinuxProfile, vars: TemplateVars, file: DatasourceFile): string | null {
  switch (file) {
    case 'meta-data':
      return renderMetaData(vars);
    case 'user-data':
      return renderUserData(profile, vars);
    case 'vendor-data':
      return renderVendorData(profile, vars);
    case 'network-config':
      return renderNetworkConfig(profile, vars);
  }
}

/** What stops the profile from booting this machine: every document and the kernel arguments (empty: nothing). */
export function datasourceProblems(profile: LinuxProfile, vars: TemplateVars): string[] {
  const problems: string[] = [];
  for (const file of DATASOURCE_FILES) {
    try {
      renderDocument(profile, vars, file);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      problems.push(...err.problems);
    }
  }
  return [...problems, ...cmdlineProblems(profile, vars)];
}

/**
 * What is wrong with a profile whatever machine boots it: its documents rendered for a sample
 * machine (unknown variables, YAML, cloud-init's schema, the kernel arguments). Checked when a
 * profile is loaded, so a mistake is reported then and not at the first boot.
 */
export function sampleProblems(profile: LinuxProfile): string[] {
  const node = blankNode('02:00:00:00:00:01', { role: 'worker', state: 'assigned', arch: 'amd64', hostname: 'sample', lastIp: '192.0.2.100' });
  return datasourceProblems(profile, templateVars({ node, profile, cluster: 'sample', genesisUrl: 'http://192.0.2.1:8080', token: '0'.repeat(64), joinToken: 'gjt_sample', k3sToken: 'K10sample' }));
}

/** A placeholder in a kernel argument: `{{ name }}`, no filters (the argument is one word). */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

function renderArg(arg: string, vars: TemplateVars, problems: string[], profile: string): string {
  let bad = false;
  const out = arg.replace(PLACEHOLDER, (_m, name: string) => {
    const v = Object.hasOwn(vars, name) ? vars[name] : undefined;
    if (v === undefined || typeof v === 'object') {
      bad = true;
      problems.push(`${profile} cmdline: {{ ${name} }} ${v === undefined ? 'is not a variable' : 'is not a single value'}`);
      return '';
    }
    return String(v);
  });
  if (!bad && !isKernelWord(out)) {
    problems.push(`${profile} cmdline: ${JSON.stringify(out.slice(0, 80))} is not one plain word (${KERNEL_WORD_CHARS})`);
  }
  return out;
}

function cmdlineProblems(profile: LinuxProfile, vars: TemplateVars): string[] {
  const problems: string[] = [];
  for (const a of profile.cmdline) renderArg(a, vars, problems, profile.name);
  return problems;
}

/** The kernel arguments of a cloud-init boot. Throws TemplateError. */
export function renderCmdline(profile: LinuxProfile, vars: TemplateVars): string[] {
  const problems: string[] = [];
  const args = profile.cmdline.map((a) => renderArg(a, vars, problems, profile.name));
  if (problems.length) throw new TemplateError(problems);
  return args;
}
