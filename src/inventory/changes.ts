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

function isValidBmcAddress(a: string): boolean {
  const ipv4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;
  // All digits and dots is meant as an address (192.0.2.300 is a typo, not a host name).
  if (/^[\d.]+$/.test(a)) return ipv4.test(a);
  return /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(a);
}

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
  if (c.power != null) {
    if (c.power.method === 'ipmi' && !c.power.bmc) throw new ChangeError('power.method ipmi needs power.bmc: {address, username, passwordFile}');
    if (c.power.method !== 'ipmi' && c.power.bmc) throw new ChangeError(`power.bmc goes with power.method ipmi, not ${c.power.method}`);
    const bmc = c.power.bmc;
    if (bmc) {
      if (!isValidBmcAddress(bmc.address)) throw new ChangeError(`power.bmc.address ${JSON.stringify(bmc.address)} must be an IPv4 address or a host name`);
      if (!/^[\x21-\x7e]{1,16}$/.test(bmc.username)) throw new ChangeError('power.bmc.username must be 1 to 16 printable characters (IPMI user names are at most 16)');
      // The password stays in a file the operator controls; Genesis stores where it is, never what it is.
      if (!bmc.passwordFile.startsWith('/') || bmc.passwordFile.includes('\0')) throw new ChangeError('power.bmc.passwordFile must be an absolute path to a file holding the BMC password (mode 0600)');
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
