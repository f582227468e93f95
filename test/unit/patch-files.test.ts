// genesis.yaml's patch files: read at start and when they change, never per use; a change (an
// editor's rename included) applies without a restart; a broken or missing file is that slot's
// problem, not a crash.

import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PatchFileSet } from '../../src/provision/patch-files.ts';
import { until } from '../helpers/wait.ts';

let dir: string;
let sets: PatchFileSet[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-patches-'));
});
afterEach(() => {
  for (const s of sets) s.close();
  sets = [];
  rmSync(dir, { recursive: true, force: true });
});

function open(files: Partial<Record<'cluster' | 'controlplane' | 'worker', string>>, watch = true) {
  const reads: string[] = [];
  const set = new PatchFileSet(
    { cluster: files.cluster ?? '', controlplane: files.controlplane ?? '', worker: files.worker ?? '' },
    {
      watch,
      read: (f) => {
        reads.push(path.basename(f));
        return readFileSync(f, 'utf8');
      },
    },
  );
  sets.push(set);
  return { set, reads };
}

const SYSCTL = (v: string) => `machine:\n  sysctls:\n    vm.swappiness: "${v}"\n`;

describe('PatchFileSet', () => {
  it('reads each file once at start, however often it is used', () => {
    const cluster = path.join(dir, 'cluster.yaml');
    writeFileSync(cluster, SYSCTL('10'));
    const { set, reads } = open({ cluster });
    for (let i = 0; i < 1000; i++) expect(set.slot('cluster')?.patch).not.toBeNull();
    expect(reads).toEqual(['cluster.yaml']);
    expect(set.slot('worker')).toBeUndefined();
  });

  it('an edit is read again at the next use, and only then', () => {
    const cluster = path.join(dir, 'cluster.yaml');
    writeFileSync(cluster, SYSCTL('10'));
    const { set, reads } = open({ cluster }, false);
    const before = set.slot('cluster')!.sha256;
    writeFileSync(cluster, SYSCTL('100'));
    expect(set.slot('cluster')!.text).toBe(SYSCTL('100'));
    expect(set.slot('cluster')!.sha256).not.toBe(before);
    expect(reads).toEqual(['cluster.yaml', 'cluster.yaml']);
  });

  it("an editor's write-then-rename of the same size is seen", async () => {
    const cluster = path.join(dir, 'cluster.yaml');
    writeFileSync(cluster, SYSCTL('10'));
    const { set } = open({ cluster });
    writeFileSync(path.join(dir, '.cluster.yaml.swp'), SYSCTL('20'));
    renameSync(path.join(dir, '.cluster.yaml.swp'), cluster);
    await until(() => set.slot('cluster')!.text === SYSCTL('20'), 'the renamed file read');
  });

  it('a file that breaks, or goes, is the slot\'s problem with the file named; fixing it is enough', () => {
    const worker = path.join(dir, 'worker.yaml');
    writeFileSync(worker, SYSCTL('10'));
    const { set } = open({ worker }, false);
    writeFileSync(worker, 'machine: [unclosed');
    expect(set.slot('worker')!.error?.message).toMatch(/^talos\.patches\.worker \(.*worker\.yaml\): not valid YAML/);
    rmSync(worker);
    expect(set.slot('worker')!.error?.message).toMatch(/cannot read: ENOENT$/);
    writeFileSync(worker, SYSCTL('30'));
    expect(set.slot('worker')!.error).toBeNull();
  });
});
