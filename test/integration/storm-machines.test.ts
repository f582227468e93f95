// The boot-storm bench's simulated machines (bench/storm-machines.ts) against a real `genesis
// serve`: each machine, from its own loopback address, does TFTP, boot.ipxe, its script, the
// kernel and initramfs and its config, and a machine whose download is not what it should be is
// counted as failed with the reason. The bench has no thresholds; this checks it measures truly.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGenesis, type Running } from '../../bench/peers.ts';
import { runStorm, type StormOptions } from '../../bench/storm-machines.ts';

const KERNEL = 1024 * 1024;
const INITRD = 2 * 1024 * 1024 + 17;
const kpxe = Buffer.alloc(70 * 1024, 3);
let dir: string;
let genesis: Running;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-storm-machines-'));
  const talos = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
  mkdirSync(talos, { recursive: true });
  mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
  writeFileSync(path.join(talos, 'vmlinuz'), Buffer.alloc(KERNEL, 1));
  writeFileSync(path.join(talos, 'initramfs.xz'), Buffer.alloc(INITRD, 2));
  writeFileSync(path.join(dir, 'assets', 'ipxe', 'undionly.kpxe'), kpxe);
  genesis = await startGenesis(path.join(import.meta.dirname, '..', '..'), dir, { GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_TFTP_HOST: '127.0.0.1' });
});

afterAll(async () => {
  await genesis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const storm = (o: Partial<StormOptions>) =>
  runStorm({
    n: 4,
    http: { host: '127.0.0.1', port: genesis.port },
    tftp: { host: '127.0.0.1', port: genesis.tftpPort! },
    kpxe,
    kernelSize: KERNEL,
    initrdSize: INITRD,
    watch: [genesis.pid],
    macPrefix: '52-54-07',
    timeoutMs: 60_000,
    ...o,
  });

describe('the storm bench machines', () => {
  it('boot end to end, each from its own address, and the servers are measured', async () => {
    const r = await storm({});
    expect(r).toMatchObject({ n: 4, ok: 4, failed: 0, errors: {} });
    for (const step of ['tftp', 'bootipxe', 'script', 'assets', 'config'] as const) expect(r.steps[step].p50_ms).toBeGreaterThanOrEqual(0);
    expect(r.server_peak_rss_kb).toBeGreaterThan(20_000);
    expect(r.machine_max_ms).toBeLessThanOrEqual(r.wall_ms);
  });

  it('count a machine as failed, with the reason, when its TFTP file or an asset is not what it should be', async () => {
    const corrupt = await storm({ n: 2, macPrefix: '52-54-08', kpxe: Buffer.alloc(70 * 1024, 4) });
    expect(corrupt).toMatchObject({ ok: 0, failed: 2, errors: { 'Fail: kpxe corrupt': 2 } });
    const short = await storm({ n: 2, macPrefix: '52-54-09', initrdSize: INITRD + 1 });
    expect(short).toMatchObject({ ok: 0, failed: 2, errors: { [`Fail: initrd 200 ${INITRD}`]: 2 } });
  });
});
