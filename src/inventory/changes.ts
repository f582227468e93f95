// Semantic checks on a node change request, after the JSON schema has checked its shape. Each
// failure names the field and the rule, so the API can answer 400 with a message a person can act on.

import { isIP } from 'node:net';
import {
  DISK_SELECTOR_KEYS,
  isValidDiskPath,
  isValidDiskSelectorValue,
  isValidHostname,
  isValidIpv4Cidr,
  isValidLabelKey,
  isValidLabelValue,
  isValidTalosVersion,
  type NodeChanges,
} from '../domain/node.ts';
import { isSupportedTalosVersion, SUPPORTED_RANGE } from '../talos/contract.ts';
import { DiskSelectorError, diskSelectorToCel } from '../talos/disk-selector.ts';

export class ChangeError extends Error {}

export function checkNodeChanges(c: NodeChanges): NodeChanges {
  if (c.hostname != null && !isValidHostname(c.hostname)) {
    throw new ChangeError(`hostname ${JSON.stringify(c.hostname)} is not a valid lower-case RFC 1123 host name`);
  }
  if (c.installDisk != null && !isValidDiskPath(c.installDisk)) {
    throw new ChangeError(`installDisk ${JSON.stringify(c.installDisk)} must be a device path such as /dev/sda or /dev/disk/by-id/…`);
  }
  if (c.installDisk != null && c.diskSelector != null) {
    throw new ChangeError('give installDisk or diskSelector, not both');
  }
  if (c.diskSelector != null) {
    const keys = Object.keys(c.diskSelector);
    if (keys.length === 0) throw new ChangeError('diskSelector needs at least one field (or null to clear it)');
    for (const [k, v] of Object.entries(c.diskSelector)) {
      if (!(DISK_SELECTOR_KEYS as readonly string[]).includes(k)) throw new ChangeError(`diskSelector.${k} is not a Talos disk selector field (${DISK_SELECTOR_KEYS.join(', ')})`);
      if (!isValidDiskSelectorValue(v)) throw new ChangeError(`diskSelector.${k} has characters Talos selectors do not use`);
    }
    // What Talos would refuse at install (a name selector, an unknown type, an unreadable size) is refused now.
    try {
      diskSelectorToCel(c.diskSelector);
    } catch (err) {
      if (err instanceof DiskSelectorError) throw new ChangeError(err.message);
      throw err;
    }
  }
  if (c.labels) {
    for (const [k, v] of Object.entries(c.labels)) {
      if (!isValidLabelKey(k)) throw new ChangeError(`label key ${JSON.stringify(k)} is not a valid Kubernetes label key`);
      if (!isValidLabelValue(v)) throw new ChangeError(`label ${k}: value ${JSON.stringify(v)} is not a valid Kubernetes label value`);
    }
  }
  if (c.talosVersion != null && !isValidTalosVersion(c.talosVersion)) {
    throw new ChangeError(`talosVersion ${JSON.stringify(c.talosVersion)} must be a Talos release tag such as v1.14.0`);
  }
  if (c.talosVersion != null && !isSupportedTalosVersion(c.talosVersion)) {
    throw new ChangeError(`talosVersion ${c.talosVersion}: Genesis renders machine configs for Talos ${SUPPORTED_RANGE}`);
  }
  if (c.network != null) {
    const n = c.network;
    if (!isValidIpv4Cidr(n.address)) throw new ChangeError(`network.address ${JSON.stringify(n.address)} must be an IPv4 address with prefix length, e.g. 192.0.2.10/24`);
    if (n.gateway !== undefined && isIP(n.gateway) !== 4) throw new ChangeError(`network.gateway ${JSON.stringify(n.gateway)} must be an IPv4 address`);
    for (const ns of n.nameservers ?? []) {
      if (isIP(ns) === 0) throw new ChangeError(`network.nameservers: ${JSON.stringify(ns)} is not an IP address`);
    }
  }
  return c;
}
