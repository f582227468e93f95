// The pure parts of power control: the magic packet's layout, what ipmitool is asked (never the
// password), what its answers mean, and which per-node power settings are accepted.

import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangeError, checkNodeChanges } from '../../src/inventory/changes.ts';
import { ipmitoolArgs, parsePowerStatus } from '../../src/power/ipmi.ts';
import { PowerFailed, PowerRefused, readBmcPassword } from '../../src/power/power-control.ts';
import { MAGIC_PACKET_SIZE, magicPacket } from '../../src/power/wol.ts';
import { grpcErrorText } from '../../src/talos/api-client.ts';
import { hasQuorum, planColdStart } from '../../src/power/cold-start-plan.ts';
import { blankNode } from '../../src/domain/node.ts';

describe('magic packet', () => {
  it('is six 0xFF bytes, then the MAC sixteen times', () => {
    const p = magicPacket('52:54:00:ab:cd:ef');
    expect(p.length).toBe(MAGIC_PACKET_SIZE);
    expect(p.subarray(0, 6).equals(Buffer.alloc(6, 0xff))).toBe(true);
    const mac = Buffer.from([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    for (let i = 0; i < 16; i++) expect(p.subarray(6 + i * 6, 12 + i * 6).equals(mac), `copy ${i}`).toBe(true);
  });

  it('refuses what is not a MAC', () => {
    expect(() => magicPacket('52:54:00:ab:cd')).toThrow(/not a MAC/);
    expect(() => magicPacket('52:54:00:ab:cd:zz')).toThrow(/not a MAC/);
  });
});

describe('ipmitool', () => {
  it('asks lanplus with the password from the environment (-E), never on the command line', () => {
    expect(ipmitoolArgs({ address: '192.0.2.50', username: 'admin', port: 623 }, 'on')).toEqual(
      ['-I', 'lanplus', '-H', '192.0.2.50', '-p', '623', '-U', 'admin', '-E', '-N', '2', '-R', '3', 'chassis', 'power', 'on'],
    );
    expect(ipmitoolArgs({ address: 'bmc-1.lan', username: 'root' }, 'pxe').slice(-3)).toEqual(['chassis', 'bootdev', 'pxe']);
    expect(ipmitoolArgs({ address: 'bmc-1.lan', username: 'root' }, 'cycle').slice(-3)).toEqual(['chassis', 'power', 'cycle']);
  });

  it('reads the power state ipmitool prints', () => {
    expect(parsePowerStatus('Chassis Power is on\n')).toBe('on');
    expect(parsePowerStatus('Chassis Power is off\n')).toBe('off');
    expect(parsePowerStatus('Error: Unable to establish IPMI v2 / RMCP+ session\n')).toBeNull();
  });

  it('reads the BMC password only from a file its owner alone can read', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bmc-'));
    const file = path.join(dir, 'pw');
    writeFileSync(file, 'hunter2-hunter2\nignored\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(() => readBmcPassword(file)).toThrow(PowerRefused);
    expect(() => readBmcPassword(file)).toThrow(`BMC password file ${file} can be read by others (mode 644); chmod 600 it`);
    expect(() => readBmcPassword(`${file}.missing`)).toThrow(`BMC password file ${file}.missing does not exist (write the password into it, chmod 600, or point the node at another: genesis nodes power-method <mac> ipmi --bmc-password-file <file>)`);
    chmodSync(file, 0o600);
    expect(readBmcPassword(file)).toBe('hunter2-hunter2');
    expect(() => readBmcPassword(path.join(dir, 'missing'))).toThrow(PowerFailed);
    writeFileSync(path.join(dir, 'empty'), '\n', { mode: 0o600 });
    expect(() => readBmcPassword(path.join(dir, 'empty'))).toThrow(/is empty/);
  });
});

describe('power settings', () => {
  const bmc = { address: '192.0.2.50', username: 'admin', passwordFile: '/root/bmc.pass' };

  it('accepts wol, manual, and ipmi with a BMC', () => {
    expect(checkNodeChanges({ power: { method: 'wol' } })).toEqual({ power: { method: 'wol' } });
    expect(checkNodeChanges({ power: { method: 'manual' } })).toEqual({ power: { method: 'manual' } });
    expect(checkNodeChanges({ power: { method: 'ipmi', bmc } })).toEqual({ power: { method: 'ipmi', bmc } });
    expect(checkNodeChanges({ power: { method: 'ipmi', bmc: { ...bmc, address: 'bmc-3.home.arpa' } } }).power?.bmc?.address).toBe('bmc-3.home.arpa');
    expect(checkNodeChanges({ power: null })).toEqual({ power: null });
  });

  it.each([
    [{ method: 'ipmi' }, 'power.method ipmi needs power.bmc: {address, username, passwordFile}'],
    [{ method: 'wol', bmc }, 'power.bmc goes with power.method ipmi, not wol'],
    [{ method: 'ipmi', bmc: { ...bmc, address: '192.0.2.300' } }, 'power.bmc.address "192.0.2.300" must be an IPv4 address or a host name'],
    [{ method: 'ipmi', bmc: { ...bmc, address: 'bmc;reboot' } }, 'power.bmc.address "bmc;reboot" must be an IPv4 address or a host name'],
    [{ method: 'ipmi', bmc: { ...bmc, username: 'a-user-name-too-long' } }, 'power.bmc.username must be 1 to 16 printable characters (IPMI user names are at most 16)'],
    [{ method: 'ipmi', bmc: { ...bmc, username: 'ad min' } }, 'power.bmc.username must be 1 to 16 printable characters (IPMI user names are at most 16)'],
    [{ method: 'ipmi', bmc: { ...bmc, passwordFile: 'bmc.pass' } }, 'power.bmc.passwordFile must be an absolute path to a file holding the BMC password (mode 0600)'],
  ] as const)('refuses %j', (power, message) => {
    expect(() => checkNodeChanges({ power: power as never })).toThrow(ChangeError);
    expect(() => checkNodeChanges({ power: power as never })).toThrow(message);
  });
});

describe('Talos API errors', () => {
  it('say the API could not be reached, and why, not grpc-js\'s resolver notes', () => {
    expect(grpcErrorText({ details: 'No connection established. Last error: Error: connect ECONNREFUSED 192.0.2.5:50000. Resolution note: ', message: '' })).toBe(
      'cannot reach the Talos API (connect ECONNREFUSED 192.0.2.5:50000)',
    );
    expect(grpcErrorText({ details: 'etcd member is the only member of the cluster', message: '' })).toBe('etcd member is the only member of the cluster');
    expect(grpcErrorText({ message: '14 UNAVAILABLE: Connection dropped' })).toBe('14 UNAVAILABLE: Connection dropped');
  });
});

describe('cold start plan', () => {
  const since = '2026-12-01T10:00:00.000Z';
  const node = (mac: string, over: Parameters<typeof blankNode>[1]) => blankNode(mac, { state: 'installed', ...over });

  it('wakes installed machines that are silent: control planes and workers apart; never manual ones', () => {
    const nodes = [
      node('52:54:00:00:00:05', { role: 'worker' }),
      node('52:54:00:00:00:02', { role: 'controlplane' }),
      node('52:54:00:00:00:01', { role: 'controlplane' }),
      node('52:54:00:00:00:03', { role: 'controlplane' }), // answered the probe
      node('52:54:00:00:00:04', { role: 'worker', talosSeen: '2026-12-01T10:00:05.000Z' }), // sent an event since start
      node('52:54:00:00:00:06', { role: 'worker', talosSeen: '2026-12-01T09:00:00.000Z' }), // last heard before the cut
      node('52:54:00:00:00:07', { role: 'worker', power: { method: 'manual' } }),
      node('52:54:00:00:00:08', { role: 'worker', state: 'installing' }), // never ran from its disk
      node('52:54:00:00:00:09', { role: 'unassigned' }),
    ];
    expect(planColdStart(nodes, new Set(['52:54:00:00:00:03']), since)).toEqual({
      controlplanes: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
      workers: ['52:54:00:00:00:05', '52:54:00:00:00:06'],
      skipped: [{ mac: '52:54:00:00:00:07', reason: 'manual power' }],
    });
  });

  it('has quorum with more than half of the members healthy', () => {
    expect(hasQuorum(3, 1)).toBe(false);
    expect(hasQuorum(3, 2)).toBe(true);
    expect(hasQuorum(4, 2)).toBe(false);
    expect(hasQuorum(4, 3)).toBe(true);
    expect(hasQuorum(1, 1)).toBe(true);
    expect(hasQuorum(0, 0)).toBe(false);
  });
});
