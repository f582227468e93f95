// The served-config memory of ConfigRenderer: an install script's check renders the machine's
// config and the config fetch reuses it, but any change to an input renders again. A real secrets
// file, real patch files, the real Talos renderer.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { blankNode } from '../../src/domain/node.ts';
import { ConfigRenderer } from '../../src/provision/config-renderer.ts';
import { PatchFileSet } from '../../src/provision/patch-files.ts';
import { compiledSchemaCount } from '../../src/talos/schema.ts';
import { SecretsStore, writeSecrets } from '../../src/talos/secrets-store.ts';
import { generateSecrets } from '../../src/talos/secrets.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function renderer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-served-'));
  dirs.push(dir);
  const patch = path.join(dir, 'worker.yaml');
  writeFileSync(patch, 'machine:\n  env:\n    A: one\n');
  writeSecrets(dir, fixtureSecrets());
  const secrets = new SecretsStore(dir, fixtureSecrets());
  const r = new ConfigRenderer({ secrets, cluster: testCluster(), patchFiles: new PatchFileSet({ cluster: '', controlplane: '', worker: patch }), defaultTalosVersion: 'v1.14.0' });
  return { r, dir, patch };
}

describe('ConfigRenderer.renderServed', () => {
  it('renders once for the same inputs, the same bytes as render()', () => {
    const { r } = renderer();
    const node = blankNode('52:54:00:00:0f:01', { role: 'worker', hostname: 'w-1' });
    const spy = vi.spyOn(r, 'render');
    expect(r.problem(node)).toBeUndefined();
    const served = r.renderServed(node);
    expect(r.renderServed({ ...node, lastSeen: 'later' } as typeof node)).toBe(served);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(served.yaml).toBe(r.render(node).yaml);
  });

  it('machines whose configs do not carry their MAC share one render; a config that carries it is its machine\'s alone', () => {
    const { r } = renderer();
    const spy = vi.spyOn(r, 'render');
    const plain = ['52:54:00:00:1f:01', '52:54:00:00:1f:02', '52:54:00:00:1f:03'].map((mac) => blankNode(mac, { role: 'worker' }));
    const configs = plain.map((n) => r.renderServed(n));
    expect(spy).toHaveBeenCalledTimes(1);
    expect(configs[1]).toBe(configs[0]);
    expect(configs[2]).toBe(configs[0]);
    // What the third machine's own render gives, byte for byte.
    expect(configs[2]!.yaml).toBe(r.render(plain[2]!).yaml);
    spy.mockClear();

    // A static address binds the NIC by MAC: rendered per machine, each with its own MAC.
    const network = { address: '192.0.2.21/24', gateway: '192.0.2.1' };
    const bound = ['52:54:00:00:2f:01', '52:54:00:00:2f:02'].map((mac) => blankNode(mac, { role: 'worker', network }));
    const [first, second] = bound.map((n) => r.renderServed(n));
    expect(spy).toHaveBeenCalledTimes(2);
    expect(first!.yaml).toContain('52:54:00:00:2f:01');
    expect(second!.yaml).toContain('52:54:00:00:2f:02');
    expect(second!.yaml).not.toContain('52:54:00:00:2f:01');
    expect(r.renderServed(bound[0]!)).toBe(first);
  });

  it('a config that carries its MAC in any form (upper case, dashes, bare) is remembered for its machine alone', () => {
    for (const form of [(m: string) => m.toUpperCase(), (m: string) => m.replaceAll(':', '-'), (m: string) => m.replaceAll(':', '')]) {
      const { r } = renderer();
      const spy = vi.spyOn(r, 'render');
      // The node's own patch names its MAC; a second machine with the same patch text renders its own.
      const configPatch = `machine:\n  nodeAnnotations:\n    genesis.example/nic: "${form('52:54:00:00:3f:01')}"\n`;
      const one = r.renderServed(blankNode('52:54:00:00:3f:01', { role: 'worker', configPatch }));
      const other = r.renderServed(blankNode('52:54:00:00:3f:02', { role: 'worker', configPatch }));
      expect(spy).toHaveBeenCalledTimes(2);
      expect(other).not.toBe(one);
    }
  });

  it('renders again when the node, its patch, a patch file or the secrets change', async () => {
    const { r, dir, patch } = renderer();
    const node = blankNode('52:54:00:00:0f:02', { role: 'worker', hostname: 'w-2' });
    const first = r.renderServed(node);
    const renamed = r.renderServed({ ...node, hostname: 'w-2b' });
    expect(renamed.yaml).not.toBe(first.yaml);
    const patched = r.renderServed({ ...node, configPatch: 'machine:\n  env:\n    B: two\n' });
    expect(patched.yaml).toContain('B: two');
    writeFileSync(patch, 'machine:\n  env:\n    A: changed\n');
    expect(r.renderServed(node).yaml).toContain('A: changed');
    writeSecrets(dir, await generateSecrets());
    const rekeyed = r.renderServed(node);
    expect(rekeyed.sha256).not.toBe(first.sha256);
    expect(rekeyed.yaml).toBe(r.render(node).yaml);
  });
});

describe('ConfigRenderer.release and releaseWhenIdle', () => {
  it('lets go of served configs and compiled validators, and renders the same bytes after', () => {
    const { r } = renderer();
    const node = blankNode('52:54:00:00:0f:03', { role: 'worker', hostname: 'w-3' });
    const before = r.renderServed(node);
    expect(r.servedHeld).toBe(1);
    expect(compiledSchemaCount().validators).toBeGreaterThan(0);
    r.release();
    expect(r.servedHeld).toBe(0);
    const { sources: kept, sourceChars } = compiledSchemaCount();
    expect(kept).toBeGreaterThan(0);
    expect(compiledSchemaCount()).toEqual({ minors: 0, validators: 0, sources: kept, sourceChars, compiler: false });
    const after = r.renderServed(node);
    expect(after).not.toBe(before);
    expect(after.yaml).toBe(before.yaml);
    // Checked again by the kept validators' sources, without compiling: ajv is not made again.
    expect(compiledSchemaCount()).toMatchObject({ sources: kept, compiler: false });
    expect(compiledSchemaCount().validators).toBeGreaterThan(0);
    // A config that breaks the schema is still refused by the validators compiled again.
    expect(r.problem({ ...node, configPatch: 'machine:\n  install:\n    wipe: sometimes\n' })).toMatch(/wipe/);
  });

  it('releases once the idle time has passed without a render, and each render restarts the countdown', () => {
    vi.useFakeTimers();
    const { r } = renderer();
    const node = blankNode('52:54:00:00:0f:04', { role: 'worker', hostname: 'w-4' });
    r.releaseWhenIdle(60_000);
    r.renderServed(node);
    vi.advanceTimersByTime(45_000);
    r.renderServed({ ...node, hostname: 'w-4b' });
    vi.advanceTimersByTime(45_000);
    // 90 s since the first render, 45 s since the last: still held.
    expect(r.servedHeld).toBe(2);
    vi.advanceTimersByTime(15_000);
    expect(r.servedHeld).toBe(0);
    // After a release the next render arms it again.
    r.renderServed(node);
    vi.advanceTimersByTime(60_000);
    expect(r.servedHeld).toBe(0);
    r.renderServed(node);
    r.close();
    vi.advanceTimersByTime(120_000);
    expect(r.servedHeld).toBe(1);
  });
});
