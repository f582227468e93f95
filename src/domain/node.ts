// What the inventory stores about a machine, and the rules its fields obey. Pure: no SQLite here,
// so the HTTP layer and the store share one definition of "valid".

export const ROLES = ['unassigned', 'controlplane', 'worker'] as const;
export type Role = (typeof ROLES)[number];

/**
 * discovered → assigned → installing → installed, and reinstall-requested from any of them.
 * `installing`: the node fetched its Talos machine config; `installed`: it reported (or an
 * operator marked) a finished install, so its next PXE boot is sent to the local disk.
 */
export const BOOT_STATES = ['discovered', 'assigned', 'installing', 'installed', 'reinstall-requested'] as const;
export type BootState = (typeof BOOT_STATES)[number];

export const ARCHES = ['amd64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

/** 'u-boot': an arm64 board whose U-Boot boots through Genesis's boot script (no iPXE). */
export const FIRMWARES = ['bios', 'uefi', 'u-boot'] as const;
export type Firmware = (typeof FIRMWARES)[number];

/** How an installed node leaves PXE for its disk; firmwares differ in which of these works. */
export const LOCAL_BOOT_MODES = ['exit', 'sanboot', 'http404'] as const;
export type LocalBootMode = (typeof LOCAL_BOOT_MODES)[number];

export type Node = {
  mac: string;
  role: Role;
  state: BootState;
  hostname: string | null;
  arch: Arch | null;
  firmware: Firmware | null;
  uuid: string | null;
  serial: string | null;
  manufacturer: string | null;
  product: string | null;
  lastIp: string | null;
  installDisk: string | null;
  /** Talos `machine.install.diskSelector` fields, e.g. { size: ">= 100GB", type: "nvme" }. */
  diskSelector: Record<string, string> | null;
  labels: Record<string, string>;
  talosVersion: string | null;
  /** The machine's own boot profile (`talos`, `k3s`, a profile under profiles.dir); null: its role's or the cluster's. */
  profile: string | null;
  localBoot: LocalBootMode;
  /** Static IPv4 settings written into the machine config; null: DHCP. */
  network: StaticNetwork | null;
  /** The node's own Talos config patch (YAML), applied after the cluster and role patches. */
  configPatch: string | null;
  /** The operator chose this control plane to bootstrap etcd (else the first reachable one is). */
  bootstrap: boolean;
  /** How Genesis may power it on and off; null: Wake-on-LAN. */
  power: PowerSettings | null;
  /** What Talos last reported through the event sink (null: nothing yet). */
  talosStage: string | null;
  talosReady: boolean | null;
  /** The node's addresses as Talos reports them; events and logs from these are the node's. */
  talosAddresses: string[];
  /** When the node's last Talos event arrived. */
  talosSeen: string | null;
  /**
   * Why Genesis holds this assigned machine in its wait loop instead of sending the installer
   * (assets missing, a config that cannot be rendered, an unsupported version); null when it is not held.
   */
  waiting: string | null;
  /** Until when the machine may fetch its config (null: no install window is open). See install-window.ts. */
  windowUntil: string | null;
  /** The address bound to the open window: the first that asked for the machine's script in it. */
  windowIp: string | null;
  /** Two addresses claimed this MAC inside its window: nothing is served until the operator confirms one. */
  conflict: string | null;
  /**
   * The settings (NodeChanges keys) the fleet file sets for this machine: the file owns them, so
   * the API and the dashboard refuse to change them (src/fleet). Empty: nothing is file-managed.
   */
  fleetFields: string[];
  firstSeen: string;
  lastSeen: string | null;
  updatedAt: string;
};

/** What the API (or CLI) may change on a node. Absent fields are left as they are; null clears. */
export type NodeChanges = {
  role?: Role;
  hostname?: string | null;
  installDisk?: string | null;
  diskSelector?: Record<string, string> | null;
  labels?: Record<string, string>;
  talosVersion?: string | null;
  profile?: string | null;
  localBoot?: LocalBootMode;
  network?: StaticNetwork | null;
  configPatch?: string | null;
  bootstrap?: boolean;
  power?: PowerSettings | null;
};

export type StaticNetwork = { address: string; gateway?: string; nameservers?: string[] };

/** How Genesis may power a machine on or off (see src/power). */
export const POWER_METHODS = ['wol', 'ipmi', 'manual'] as const;
export type PowerMethod = (typeof POWER_METHODS)[number];
/**
 * `wol`: magic packets to its MAC (the default when none is set); `ipmi`: its BMC through
 * ipmitool (lanplus), the password read from `passwordFile` (owner-only) at each use and never
 * stored or returned; `manual`: Genesis never powers it on (a desktop whose VMs come and go).
 */
export type PowerSettings = { method: PowerMethod; bmc?: { address: string; username: string; passwordFile: string } };

/** What a machine tells us about itself when it asks for its boot script. */
export type BootFacts = {
  arch?: Arch;
  firmware?: Firmware;
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  ip?: string;
};

export const EVENT_TYPES = [
  'discovered',
  // Boot steps (provision/boot-steps.ts): a machine not yet known has them held in memory and written
  // when its first script request records it; a stranger that never gets that far leaves nothing stored.
  'dhcp-offered',
  'tftp-served',
  'script-served',
  'asset-fetched',
  'config-served',
  'config-denied',
  'config-failed',
  // Genesis started (detail.reason) or stopped (reason null) holding an assigned machine back from installing:
  // at the machine's request (actor boot), or when the operator's change lifted the hold (holdLifted).
  'boot-waiting',
  // A second address claimed the MAC inside its install window (detail.addresses); and the operator's answer.
  'conflict',
  'conflict-resolved',
  'state-changed',
  'api-change',
  // The fleet file changed the machine's settings (actor fleet-file; detail.file, detail.commit).
  'fleet-change',
  'deleted',
  // The cluster bootstrap, recorded on the node it concerns.
  'bootstrap-elected',
  'bootstrap-sent',
  'bootstrap-deferred',
  'bootstrapped',
  'bootstrap-claimed',
  // A recovery's snapshot uploaded to this control plane (EtcdRecover), before its Bootstrap.
  'etcd-recover-uploaded',
  // An etcd snapshot taken from this control plane (detail: name, size, sha256), or the attempt that failed.
  'etcd-snapshot',
  'etcd-snapshot-failed',
  // A power action Genesis took (detail: action, method, result), or one that failed (detail.error).
  'power',
  // What the node's Talos published to the event sink (detail.kind: sequence, phase, task, ...).
  'talos-event',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type NodeEvent = {
  id: number;
  mac: string;
  at: string;
  type: EventType;
  /** Who caused it: `boot` (the machine itself), `api`, `cli`, `policy`, `system`. */
  actor: string;
  detail: Record<string, unknown>;
};

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 chars max.
// Talos also takes it as the node's Kubernetes name, which must be lower case.
const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export function isValidHostname(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => HOST_LABEL.test(l));
}

// Kubernetes label key: optional DNS-subdomain prefix and "/", then a name of up to 63 chars.
const LABEL_NAME = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)$/;
export function isValidLabelKey(k: string): boolean {
  const slash = k.lastIndexOf('/');
  if (slash === -1) return LABEL_NAME.test(k);
  const prefix = k.slice(0, slash);
  return prefix.length <= 253 && prefix.split('.').every((l) => HOST_LABEL.test(l)) && LABEL_NAME.test(k.slice(slash + 1));
}
export function isValidLabelValue(v: string): boolean {
  return v === '' || LABEL_NAME.test(v);
}

/** A block device path Talos can install to: /dev/ and a plain name, nothing a shell would read. */
export function isValidDiskPath(s: string): boolean {
  return /^\/dev\/[A-Za-z0-9][A-Za-z0-9/_.-]{0,200}$/.test(s) && !s.includes('..');
}

/** A Talos release tag: v1.12.0, v1.13.0-beta.1. */
export function isValidTalosVersion(s: string): boolean {
  return /^v\d{1,3}\.\d{1,3}\.\d{1,3}(-[0-9A-Za-z.]{1,40})?$/.test(s);
}

/** Talos disk selector keys (machine.install.diskSelector) and a conservative value charset. */
export const DISK_SELECTOR_KEYS = ['size', 'name', 'model', 'serial', 'modalias', 'uuid', 'wwid', 'type', 'busPath'] as const;
export function isValidDiskSelectorValue(v: string): boolean {
  return /^[A-Za-z0-9 <>=._:/*+-]{1,128}$/.test(v);
}

/** An IPv4 address with prefix length, as Talos wants it: 192.0.2.10/24. */
export function isValidIpv4Cidr(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) >= 1 && Number(m[5]) <= 32;
}

/** One kernel message from a node, as Talos's JSON-lines log sender writes it. */
export type KernelLogLine = {
  /** When Talos logged it (talos-time), as sent; null when absent. */
  talosTime: string | null;
  level: string | null;
  facility: string | null;
  msg: string;
  /** The rest of the line's fields (seq, clock, priority, ...). */
  fields: Record<string, unknown>;
};

export type StoredKernelLogLine = KernelLogLine & { id: number; receivedAt: string };

/** A node with nothing known but its MAC: for previewing configs of machines not (yet) recorded. */
export function blankNode(mac: string, over: Partial<Node> = {}): Node {
  return {
    mac,
    role: 'unassigned',
    state: 'discovered',
    hostname: null,
    arch: null,
    firmware: null,
    uuid: null,
    serial: null,
    manufacturer: null,
    product: null,
    lastIp: null,
    installDisk: null,
    diskSelector: null,
    labels: {},
    talosVersion: null,
    profile: null,
    localBoot: 'exit',
    network: null,
    configPatch: null,
    bootstrap: false,
    power: null,
    talosStage: null,
    talosReady: null,
    talosAddresses: [],
    talosSeen: null,
    waiting: null,
    windowUntil: null,
    windowIp: null,
    conflict: null,
    fleetFields: [],
    firstSeen: '',
    lastSeen: null,
    updatedAt: '',
    ...over,
  };
}

/** Where a node is reached (its Talos API, talosconfig endpoints): its static address, else where it last booted from. */
export function nodeAddress(n: Pick<Node, 'network' | 'lastIp'>): string | null {
  return n.network?.address.split('/')[0] ?? n.lastIp;
}
