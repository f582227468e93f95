// Power actions on one machine, by its power settings: Wake-on-LAN magic packets, its BMC
// through ipmitool, or the Talos API (reboot, and reset for a reinstall). Every action, and
// every refusal or failure, is an event on the machine's timeline. A machine marked `manual`
// is never powered on or off by Genesis.

import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { nodeAddress, type Node, type PowerMethod } from '../domain/node.ts';
import type { NodeAdmin } from '../inventory/ports.ts';
import type { TalosDialer } from '../talos/dialer.ts';
import { ipmitoolArgs, parsePowerStatus, type IpmiAction } from './ipmi.ts';
import { magicPacket } from './wol.ts';

export const POWER_ACTIONS = ['on', 'off', 'cycle', 'reboot', 'pxe', 'status'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

export type PowerResult = { mac: string; action: PowerAction | 'reinstall'; method: PowerMethod | 'talos'; result: string; power?: 'on' | 'off' | null };

/** Not found (404). */
export class PowerNotFound extends Error {}
/** The action does not fit the machine's settings (409): manual power, WoL asked to switch off. */
export class PowerRefused extends Error {}
/** The action was tried and failed (502): BMC unreachable, wrong password, Talos API error. */
export class PowerFailed extends Error {}

type RunResult = { code: number | null; stdout: string; stderr: string };

export type PowerDeps = {
  inventory: Pick<NodeAdmin, 'get' | 'record' | 'setState'>;
  dialer: TalosDialer;
  /** Where magic packets go (a broadcast address) and the local address they leave from (the LAN interface's). */
  wol: { target: string; port: number; source: string };
  ipmi: { cipherSuite: number; port?: number };
  log: Logger;
};

const runCommand = (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> =>
  new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });

export class PowerControl {
  private readonly deps: PowerDeps;

  constructor(deps: PowerDeps) {
    this.deps = deps;
  }

  async act(mac: string, action: PowerAction, actor: string): Promise<PowerResult> {
    const node = this.node(mac);
    const method = node.power?.method ?? 'wol';
    return this.recorded(node, action, action === 'reboot' ? 'talos' : method, actor, async () => {
      if (action === 'reboot') {
        await (await this.talos(node)).reboot();
        return { result: 'Talos is rebooting' };
      }
      if (method === 'manual' && action !== 'status') throw new PowerRefused(`${mac} is set to manual power: Genesis never powers it on or off`);
      if (method === 'manual') return { result: 'manual power: Genesis does not know', power: null };
      if (method === 'wol') {
        if (action === 'on') {
          await this.sendMagicPacket(mac);
          return { result: `magic packet sent to ${this.deps.wol.target}:${this.deps.wol.port} from ${this.deps.wol.source}` };
        }
        if (action === 'status') return { result: 'Wake-on-LAN cannot tell', power: null };
        throw new PowerRefused(`Wake-on-LAN can only power ${mac} on; to ${action === 'off' ? 'switch it off' : `${action} it`}, give it an IPMI BMC (power.method ipmi), or use reboot (Talos API)`);
      }
      return this.ipmi(node, action);
    });
  }

  /**
   * Reinstall without touching the machine: open its install window, then ask Talos to wipe its
   * system disk and reboot, so it PXE-boots into the window. If Talos cannot be reached the window
   * stays open and the answer says to power-cycle it.
   */
  async reinstall(mac: string, actor: string, opts: { graceful: boolean }): Promise<PowerResult> {
    const node = this.node(mac);
    if (node.role === 'unassigned') throw new PowerRefused(`${mac} has no role: there is nothing to reinstall it as`);
    this.deps.inventory.setState(mac, 'reinstall-requested', actor);
    return this.recorded(node, 'reinstall', 'talos', actor, async () => {
      try {
        await (await this.talos(node)).reset({ graceful: opts.graceful });
      } catch (err) {
        throw new PowerFailed(`${(err as Error).message}; the install window is open, so a power cycle of ${mac} reinstalls it`);
      }
      return { result: 'Talos is wiping its system disk and rebooting into the install window' };
    });
  }

  private node(mac: string): Node {
    const node = this.deps.inventory.get(mac);
    if (!node) throw new PowerNotFound(`no node with MAC ${mac}`);
    return node;
  }

  private async recorded(
    node: Node,
    action: PowerResult['action'],
    method: PowerResult['method'],
    actor: string,
    fn: () => Promise<{ result: string; power?: 'on' | 'off' | null }>,
  ): Promise<PowerResult> {
    try {
      const r = await fn();
      if (action !== 'status') {
        this.deps.inventory.record(node.mac, 'power', actor, { action, method, result: r.result });
        this.deps.log.info({ mac: node.mac, action, method, actor }, r.result);
      }
      return { mac: node.mac, action, method, ...r };
    } catch (err) {
      const e = err instanceof PowerRefused || err instanceof PowerFailed ? err : new PowerFailed((err as Error).message);
      if (action !== 'status') this.deps.inventory.record(node.mac, 'power', actor, { action, method, error: e.message });
      throw e;
    }
  }

  private async talos(node: Node) {
    const addr = nodeAddress(node);
    if (!addr) throw new PowerRefused(`${node.mac} has no known address to reach its Talos API at`);
    return this.deps.dialer.dial(addr);
  }

  private async sendMagicPacket(mac: string): Promise<void> {
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        // Bound to the LAN address, so the packet leaves on that interface and not on the default route's.
        socket.bind({ address: this.deps.wol.source, port: 0 }, () => resolve());
      });
      socket.setBroadcast(true);
      const packet = magicPacket(mac);
      await new Promise<void>((resolve, reject) => socket.send(packet, this.deps.wol.port, this.deps.wol.target, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      throw new PowerFailed(`cannot send the magic packet to ${this.deps.wol.target}:${this.deps.wol.port} from ${this.deps.wol.source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    } finally {
      socket.close();
    }
  }

  private async ipmi(node: Node, action: Exclude<PowerAction, 'reboot'>): Promise<{ result: string; power?: 'on' | 'off' | null }> {
    const bmc = node.power?.bmc;
    if (!bmc) throw new PowerRefused(`${node.mac} is set to IPMI power but has no BMC (power.bmc: address, username, passwordFile)`);
    const password = readBmcPassword(bmc.passwordFile);
    const args = ['-C', String(this.deps.ipmi.cipherSuite), ...ipmitoolArgs({ address: bmc.address, username: bmc.username, port: this.deps.ipmi.port }, action as IpmiAction)];
    // The password reaches ipmitool in its environment (-E), never on its command line.
    const r = await runCommand('ipmitool', args, { PATH: process.env.PATH, IPMI_PASSWORD: password });
    if (r.code === null && !r.stderr) throw new PowerFailed('ipmitool is not installed or did not finish (Debian: apt install ipmitool)');
    if (r.code !== 0) throw new PowerFailed(`BMC ${bmc.address}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    if (action === 'status') return { result: r.stdout.trim(), power: parsePowerStatus(r.stdout) };
    return { result: `BMC ${bmc.address}: ${r.stdout.trim()}` };
  }
}

/** The BMC password: the first line of a file only its owner may read (checked at every use). */
export function readBmcPassword(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist (write the password into it, chmod 600, or point the node at another: genesis nodes power-method <mac> ipmi --bmc-password-file <file>)' : code === 'EACCES' ? 'cannot be read by Genesis (permission denied)' : (code ?? String(err));
    throw new PowerFailed(`BMC password file ${file} ${why}`);
  }
  if (mode & 0o077) throw new PowerRefused(`BMC password file ${file} can be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  const password = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0] ?? '';
  if (!password) throw new PowerRefused(`BMC password file ${file} is empty`);
  return password;
}
