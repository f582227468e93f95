// The start check (provision/start-checks.ts) against real patch files and a real renderer: a
// broken patch stops the start with one line naming it; no endpoint is not its to report (the
// preflight's cluster-endpoint check says so once, with the fix), so it adds nothing.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigRenderer } from '../../src/provision/config-renderer.ts';
import { PatchFileSet } from '../../src/provision/patch-files.ts';
import { checkBeforeServing } from '../../src/provision/start-checks.ts';
import { blankNode } from '../../src/domain/node.ts';
import { SecretsStore, writeSecrets } from '../../src/talos/secrets-store.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the start check', () => {
  it('passes without an endpoint, saying nothing, and stops on a patch file that does not parse', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-start-check-'));
    dirs.push(dir);
    writeSecrets(dir, fixtureSecrets());
    const good = new PatchFileSet({ cluster: '', controlplane: '', worker: '' });
    const renderer = new ConfigRenderer({ secrets: new SecretsStore(dir, fixtureSecrets()), cluster: testCluster(), patchFiles: good, defaultTalosVersion: 'v1.14.0' });
    expect(checkBeforeServing({ patchFiles: good, renderer, passphraseFile: '', endpointSet: false })).toEqual({ ok: true, warnings: [] });
    expect(checkBeforeServing({ patchFiles: good, renderer, passphraseFile: '', endpointSet: true })).toEqual({ ok: true, warnings: [] });
    const file = path.join(dir, 'cluster.yaml');
    writeFileSync(file, 'machine: [unclosed\n');
    const broken = new PatchFileSet({ cluster: file, controlplane: '', worker: '' });
    const result = checkBeforeServing({ patchFiles: broken, renderer, passphraseFile: '', endpointSet: false });
    expect(result).toMatchObject({ problem: expect.stringMatching(/^invalid configuration: .*cluster\.yaml/) });
  });

  it('a cluster-wide patch with what only control planes take (etcd settings) starts, warning that workers wait', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-start-check-'));
    dirs.push(dir);
    writeSecrets(dir, fixtureSecrets());
    const file = path.join(dir, 'cluster.yaml');
    writeFileSync(file, 'cluster:\n  etcd:\n    advertisedSubnets: [192.0.2.0/24]\n');
    const patches = new PatchFileSet({ cluster: file, controlplane: '', worker: '' });
    const renderer = new ConfigRenderer({ secrets: new SecretsStore(dir, fixtureSecrets()), cluster: testCluster(), patchFiles: patches, defaultTalosVersion: 'v1.14.0' });
    const result = checkBeforeServing({ patchFiles: patches, renderer, passphraseFile: '', endpointSet: true });
    expect(result).toEqual({ ok: true, warnings: [expect.stringMatching(/^worker machines wait: v1alpha1 config \/cluster\/etcd: etcd config is only allowed on control plane machines: move it to the controlplane patch/)] });
    // A worker that asks waits with the problem itself, which is what its console has room for
    // (it keeps 200 characters): not the config's label, which repeats the machine it is shown on.
    const worker = { ...blankNode('52:54:00:aa:00:04'), role: 'worker' as const };
    expect(renderer.problem(worker)).toBe(
      'v1alpha1 config /cluster/etcd: etcd config is only allowed on control plane machines: move it to the controlplane patch, not the cluster-wide one',
    );
    // Anything else wrong with the worker's config still stops the start.
    writeFileSync(file, 'cluster:\n  etcd:\n    advertisedSubnets: [192.0.2.0/24]\nmachine:\n  frobnicate: true\n');
    const both = new PatchFileSet({ cluster: file, controlplane: '', worker: '' });
    const renderer2 = new ConfigRenderer({ secrets: new SecretsStore(dir, fixtureSecrets()), cluster: testCluster(), patchFiles: both, defaultTalosVersion: 'v1.14.0' });
    expect(checkBeforeServing({ patchFiles: both, renderer: renderer2, passphraseFile: '', endpointSet: true })).toMatchObject({ problem: expect.stringMatching(/^invalid configuration: controlplane machine config: .*frobnicate/) });
  });
});
