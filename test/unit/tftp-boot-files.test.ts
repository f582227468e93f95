// U-Boot's and GRUB's per-machine TFTP files are each machine's turn in the boot conversation,
// and take the same path as an iPXE install script: queued for the boot work's time slices
// (scheduling/time-slices.ts), run there as parts of one shared commit, answered once that is on
// disk. Against a real SQLite file, with the slices' "after the next poll" driven by hand; the
// shared boot script and GRUB's bootstrap loop are the same for every machine and wait for nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GrubFiles } from '../../src/grub/tftp-files.ts';
import { InventoryDatabase } from '../../src/inventory/database.ts';
import { Inventory } from '../../src/inventory/store.ts';
import { TimeSlices } from '../../src/scheduling/time-slices.ts';
import type { OpenResult } from '../../src/tftp/provider.ts';
import { UbootFiles } from '../../src/uboot/tftp-files.ts';
import { plainBootService } from '../helpers/boot-service.ts';

const PXE = '52:54:00:0d:00:01';
const SCRIPT = '52:54:00:0d:00:02';
const GRUB = '52:54:00:0d:00:03';
const client = (n: number) => ({ address: `192.0.2.${10 + n}`, port: 1069 });

let dir: string;
let inventory: Inventory;
let trace: string[];
let turns: Array<() => void>;
let uboot: UbootFiles;
let grub: GrubFiles;
let slices: TimeSlices;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-tftp-boot-files-'));
  trace = [];
  inventory = new Inventory(InventoryDatabase.open(path.join(dir, 'genesis.db'), { trace: (sql) => trace.push(sql) }));
  // Assigned, which opens their install windows.
  for (const mac of [PXE, SCRIPT, GRUB]) inventory.update(mac, { role: 'worker' }, 'test', { create: true });
  const boot = plainBootService(inventory, 'ab'.repeat(32));
  turns = [];
  slices = new TimeSlices({ sliceMs: 10, later: (fn) => turns.push(fn) });
  uboot = new UbootFiles(boot, path.join(dir, 'assets'), slices);
  grub = new GrubFiles(boot, path.join(dir, 'assets'), slices);
});

afterEach(() => {
  inventory.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Settles when `p` does; reads `settled` to see whether it has. */
function watch<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return { p, settled: () => done };
}

const text = (r: OpenResult | undefined): string => {
  if (!r?.ok) throw new Error(`not served: ${JSON.stringify(r)}`);
  return (r.source as unknown as { bytes: Buffer }).bytes.toString('latin1');
};

describe("U-Boot's and GRUB's per-machine files over TFTP", () => {
  it('wait for a time slice, share one commit there, and are answered with what was recorded', async () => {
    const events = () => inventory.events(PXE).length + inventory.events(SCRIPT).length + inventory.events(GRUB).length;
    const before = events();
    trace.length = 0;
    const pxe = watch(uboot.open(`pxelinux.cfg/01-${PXE.replaceAll(':', '-')}`, client(1)));
    const script = watch(uboot.open(`genesis/${SCRIPT}.scr.uimg`, client(2)));
    const cfg = watch(grub.open(`grub/genesis/${GRUB}.cfg`, client(3)));
    // Let every promise that could settle without a slice do so: nothing has run or been written.
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(slices.waiting).toBe(3);
    expect([pxe.settled(), script.settled(), cfg.settled()]).toEqual([false, false, false]);
    expect(trace).toEqual([]);

    turns.shift()!();
    const [p, s, c] = await Promise.all([pxe.p, script.p, cfg.p]);
    expect(text(p)).toContain(`/talos/config/${PXE}/${'ab'.repeat(32)}`);
    expect(text(s)).toContain(SCRIPT);
    expect(text(c)).toContain(`/talos/config/${GRUB}/${'ab'.repeat(32)}`);
    expect(trace.filter((sql) => sql === 'COMMIT')).toHaveLength(1);
    expect(events()).toBe(before + 3);
    expect(inventory.get(PXE)).toMatchObject({ lastIp: '192.0.2.11', firmware: 'u-boot' });
    expect(inventory.get(GRUB)).toMatchObject({ lastIp: '192.0.2.13', firmware: 'uefi' });
  });

  it('the shared boot script and bootstrap loop are answered without waiting for a slice', async () => {
    expect(text(await uboot.open('boot.scr.uimg', client(1)))).toContain('genesis');
    expect(text(await grub.open('grub/grub.cfg', client(1)))).toContain('genesis');
    expect(slices.waiting).toBe(0);
    expect(turns).toEqual([]);
  });
});
