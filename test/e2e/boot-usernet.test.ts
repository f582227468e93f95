// Real firmware boots through Genesis: SeaBIOS + iPXE ROM and OVMF + iPXE ROM under QEMU (TCG),
// on user networking inside `unshare -n`. The machine is recorded from its first request, waits
// while it has no role, is assigned through the API (or, in the last case, by a fleet file alone),
// then boots the kernel Genesis names with the
// Talos arguments and its own talos.config= URL. The "Talos" here is a stand-in kernel and
// initramfs built from Debian packages at test time (build-standin.sh).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { talosKernelArgs } from '../../src/ipxe/kernel-args.ts';
import { run } from '../helpers/run.ts';
import { buildStandin, stageStandin } from '../helpers/standin.ts';
import { commandMissing } from '../helpers/host-tools.ts';

const HERE = import.meta.dirname;

function missing(): string | undefined {
  const tool = commandMissing(['qemu-system-x86_64', 'unshare', 'busybox', 'apt-get', 'dpkg-deb']);
  if (tool) return tool;
  if (!existsSync('/usr/share/ovmf/OVMF.fd')) return 'ovmf is not installed';
  if (spawnSync('unshare', ['-n', 'true']).status !== 0) return 'cannot create a network namespace here (unshare -n)';
  return undefined;
}
const skip = missing();
if (skip) console.warn(`e2e boots skipped: ${skip}`);

describe.skipIf(skip !== undefined)('real firmware boots through Genesis (QEMU user networking)', () => {
  beforeAll(async () => {
    const built = await buildStandin();
    expect(built.ok, built.stderr).toBe(true);
  }, 600_000);

  for (const [firmware, mac] of [['bios', '52:54:00:e2:00:01'], ['uefi', '52:54:00:e2:00:02']] as const) {
    it(`${firmware}: recorded, waits, is assigned, boots the kernel, which fetches its own machine config`, async () => {
      const work = mkdtempSync(path.join(tmpdir(), `genesis-e2e-${firmware}-`));
      stageStandin(path.join(work, 'assets'));
      const r = await run('bash', [path.join(HERE, 'boot-usernet.sh'), firmware, work, mac], { timeoutMs: 200_000 });
      const serial = existsSync(path.join(work, 'serial.log')) ? readFileSync(path.join(work, 'serial.log'), 'latin1') : '';
      const context = `script: ${r.stderr}\nserial tail:\n${serial.slice(-3000)}`;

      // iPXE ran boot.ipxe, was told to wait, and the operator's assignment went through.
      expect(serial, context).toContain(`Genesis: machine ${mac} is recorded but has no role yet.`);
      expect(readFileSync(path.join(work, 'assign.status'), 'utf8').trim()).toBe('200');
      expect(serial, context).toContain(`Genesis: booting Talos v1.14.0 amd64 for e2e-${firmware} (${mac}) as worker`);

      // The stand-in kernel ran with exactly the arguments Genesis wrote, and found its initramfs.
      const cmdline = /STANDIN: cmdline (.*)/.exec(serial)?.[1]?.trim().split(/\s+/) ?? [];
      const args = cmdline.slice(cmdline.indexOf('initrd=initramfs.xz'));
      // The event sink and kernel-log receiver reach the kernel too, at the advertised address.
      expect(args.slice(0, -1), context).toEqual([
        'initrd=initramfs.xz',
        ...talosKernelArgs('v1.14.0', 'amd64'),
        'talos.events.sink=10.0.2.2:8090',
        'talos.logging.kernel=tcp://10.0.2.2:8092/',
        'console=ttyS0',
        'panic=1',
      ]);
      expect(args.at(-1), context).toMatch(new RegExp(`^talos\\.config=http://10\\.0\\.2\\.2:8080/talos/config/${mac}/[0-9a-f]{64}$`));
      expect(serial, context).toContain(`STANDIN: mac ${mac}`);
      // It fetched its config through its tokenised URL: a worker config, the one Genesis recorded serving.
      expect(serial, context).toContain('STANDIN: machine.type worker');
      const servedSha = /STANDIN: config sha256 ([0-9a-f]{64})/.exec(serial)?.[1];
      expect(servedSha, context).toBeDefined();
      expect(serial, context).toContain('STANDIN: done');
      // Its kernel log went to Genesis's receiver over the network, and is the node's.
      expect(serial, context).toContain('STANDIN: kernel log sent to 10.0.2.2:8092');

      // The inventory recorded what the firmware reported.
      const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
      const node = db.prepare('SELECT role, state, arch, firmware, hostname FROM nodes WHERE mac = ?').get(mac);
      const rows = db.prepare('SELECT type, detail FROM node_events WHERE mac = ? ORDER BY id').all(mac) as Array<{ type: string; detail: string }>;
      const kernelLog = (db.prepare('SELECT msg FROM kernel_logs WHERE mac = ? ORDER BY id').all(mac) as Array<{ msg: string }>).map((l) => l.msg);
      db.close();
      const events = rows.map((e) => e.type);
      expect(node).toEqual({ role: 'worker', state: 'installing', arch: 'amd64', firmware, hostname: `e2e-${firmware}` });
      expect(events.slice(0, 4)).toEqual(['discovered', 'api-change', 'state-changed', 'script-served']);
      expect(events.filter((e) => e === 'asset-fetched')).toHaveLength(2);
      const served = rows.filter((e) => e.type === 'config-served').map((e) => JSON.parse(e.detail) as { sha256: string; role: string });
      expect(served, context).toEqual([expect.objectContaining({ role: 'worker', sha256: servedSha })]);
      expect(kernelLog[0], context).toMatch(/^Linux version /);
      expect(kernelLog, context).toContain('Run /init as init process');
      rmSync(work, { recursive: true, force: true });
    }, 240_000);
  }

  it('bios, defined only in a fleet file: no API call; it boots as its entry says from its first request', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-e2e-fleet-'));
    stageStandin(path.join(work, 'assets'));
    const mac = '52:54:00:e2:00:03';
    const fleet = path.join(work, 'fleet.yaml');
    writeFileSync(fleet, `apiVersion: genesis.dev/v1alpha1\nkind: Fleet\nmachines:\n  - mac: ${mac}\n    role: worker\n    hostname: e2e-fleet\n    labels: {from: fleet}\n`);
    const r = await run('bash', [path.join(HERE, 'boot-usernet.sh'), 'bios', work, mac, fleet], { timeoutMs: 200_000 });
    const serial = existsSync(path.join(work, 'serial.log')) ? readFileSync(path.join(work, 'serial.log'), 'latin1') : '';
    const context = `script: ${r.stderr}\nserial tail:\n${serial.slice(-3000)}`;
    expect(readFileSync(path.join(work, 'assign.status'), 'utf8').trim()).toBe('fleet');
    expect(serial, context).not.toContain('has no role yet');
    expect(serial, context).toContain(`Genesis: booting Talos v1.14.0 amd64 for e2e-fleet (${mac}) as worker`);
    expect(serial, context).toContain('STANDIN: machine.type worker');
    expect(serial, context).toContain('STANDIN: done');
    const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
    const node = db.prepare('SELECT role, state, hostname, labels, fleet_fields AS fleetFields FROM nodes WHERE mac = ?').get(mac);
    const rows = db.prepare('SELECT type, actor FROM node_events WHERE mac = ? ORDER BY id').all(mac) as Array<{ type: string; actor: string }>;
    db.close();
    expect(node).toEqual({ role: 'worker', state: 'installing', hostname: 'e2e-fleet', labels: '{"from":"fleet"}', fleetFields: '["hostname","labels","role"]' });
    // The file made it; no actor but the file and the boot ever touched it.
    expect(rows.slice(0, 3)).toEqual([
      { type: 'fleet-change', actor: 'fleet-file' },
      { type: 'state-changed', actor: 'fleet-file' },
      { type: 'script-served', actor: 'boot' },
    ]);
    expect(rows.filter((e) => e.actor.startsWith('api'))).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  }, 240_000);
});
