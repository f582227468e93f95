// The cloud-init profile with real firmware: three machines (SeaBIOS + iPXE under QEMU) with the
// k3s recipe are switched on together. Each boots the kernel its profile names with the NoCloud
// datasource on its command line; the stand-in (build-standin.sh) plays cloud-init: it fetches
// meta-data and user-data through the tokenised URL, runs the recipe's claim script as the
// user-data writes it, and phones home. One machine is told to init, the two others to join it,
// and Genesis records all three installed.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';
import { buildStandin, stageStandinProfile } from '../helpers/standin.ts';
import { commandMissing } from '../helpers/host-tools.ts';

const HERE = import.meta.dirname;
const MACS = ['52:54:00:e2:c1:01', '52:54:00:e2:c1:02', '52:54:00:e2:c1:03'];

function missing(): string | undefined {
  const tool = commandMissing(['qemu-system-x86_64', 'unshare', 'busybox', 'apt-get', 'dpkg-deb', 'curl']);
  if (tool) return tool;
  if (spawnSync('unshare', ['-n', 'true']).status !== 0) return 'cannot create a network namespace here (unshare -n)';
  return undefined;
}
const skip = missing();
if (skip) console.warn(`e2e cloud-init boots skipped: ${skip}`);

describe.skipIf(skip !== undefined)('the cloud-init profile with real firmware (QEMU user networking)', () => {
  beforeAll(async () => {
    const built = await buildStandin();
    expect(built.ok, built.stderr).toBe(true);
  }, 600_000);

  it('three machines switched on at once: each fetches its datasource, one is told to init, two to join it, all phone home and are installed', { timeout: 300_000 }, async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-e2e-cloud-init-'));
    stageStandinProfile(path.join(work, 'assets'), 'k3s');
    // The built-in recipe with a serial console, so the stand-in's report reaches the log.
    mkdirSync(path.join(work, 'profiles', 'k3s'), { recursive: true });
    writeFileSync(path.join(work, 'profiles', 'k3s', 'profile.yaml'), 'kind: cloud-init\nrecipe: k3s\ncmdline: [console=ttyS0, panic=1, "ds=nocloud;s={{ datasource_url }}"]\n');
    const r = await run('bash', [path.join(HERE, 'boot-cloud-init.sh'), work, ...MACS], { timeoutMs: 280_000 });
    const serials = MACS.map((_, i) => (existsSync(path.join(work, `serial-${i + 1}.log`)) ? readFileSync(path.join(work, `serial-${i + 1}.log`), 'latin1') : ''));
    const context = `script: ${r.stderr}\n${serials.map((s, i) => `serial ${i + 1} tail:\n${s.slice(-2000)}`).join('\n')}\ngenesis log tail:\n${readFileSync(path.join(work, 'genesis.log'), 'utf8').slice(-3000)}`;
    expect(readFileSync(path.join(work, 'assign.status'), 'utf8').trim().split('\n'), context).toEqual(['201', '201', '201']);

    const claims = serials.map((serial, i) => {
      const mac = MACS[i]!;
      // iPXE booted the profile's kernel with the datasource of this machine and this boot.
      expect(serial, context).toContain(`Genesis: booting k3s amd64 for k3s-${i + 1} (${mac}) as controlplane`);
      const cmdline = /STANDIN: cmdline (.*)/.exec(serial)?.[1]?.trim().split(/\s+/) ?? [];
      expect(cmdline.slice(cmdline.indexOf('initrd=initrd')), context).toEqual(['initrd=initrd', 'console=ttyS0', 'panic=1', expect.stringMatching(new RegExp(`^ds=nocloud;s=http://10\\.0\\.2\\.2:8080/cloud-init/${mac}/[0-9a-f]{64}/$`))]);
      expect(serial, context).toMatch(new RegExp(`STANDIN: instance-id genesis-${mac.replace(/:/g, '')}-[0-9a-f]{12} hostname k3s-${i + 1}`));
      expect(serial, context).toContain('STANDIN: user-data is #cloud-config');
      expect(serial, context).toContain('STANDIN: phoned home');
      return /STANDIN: claim (.*)/.exec(serial)?.[1]?.trim();
    });
    // One init, two joins naming the leader's address.
    expect(claims.filter((c) => c === 'cluster-init: true'), context).toHaveLength(1);
    const joins = claims.filter((c) => c?.startsWith('server: '));
    expect(joins, context).toHaveLength(2);
    expect(new Set(joins).size).toBe(1);
    const leaderIndex = claims.indexOf('cluster-init: true');

    const db = new Database(path.join(work, 'data', 'genesis.db'), { readonly: true });
    const states = MACS.map((mac) => (db.prepare('SELECT state FROM nodes WHERE mac = ?').get(mac) as { state: string }).state);
    const lock = db.prepare('SELECT state, holder, epoch FROM bootstrap_lock').get() as { state: string; holder: string; epoch: number };
    const claimed = MACS.map((mac) => db.prepare("SELECT detail FROM node_events WHERE mac = ? AND type = 'bootstrap-claimed'").all(mac) as Array<{ detail: string }>);
    const installedBy = MACS.map((mac) => db.prepare("SELECT actor FROM node_events WHERE mac = ? AND type = 'state-changed' AND detail LIKE '%\"to\":\"installed\"%'").get(mac) as { actor: string } | undefined);
    db.close();
    expect(states, context).toEqual(['installed', 'installed', 'installed']);
    expect(installedBy.map((e) => e?.actor)).toEqual(['cloud-init', 'cloud-init', 'cloud-init']);
    expect(lock).toEqual({ state: 'bootstrap-sent', holder: MACS[leaderIndex], epoch: 1 });
    // The lock records the one init; the two joins needed no write.
    expect(claimed.map((c) => c.length)).toEqual(MACS.map((_, i) => (i === leaderIndex ? 1 : 0)));
  });
});
