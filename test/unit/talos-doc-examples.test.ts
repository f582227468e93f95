// Every document example in Talos's configuration reference, as Talos's docs print it (its own
// docgen output, test/fixtures/talos/SOURCE.md), given to Genesis as a patch for that minor: a
// config Talos documents must render, validate and keep its document, for both roles.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePatch } from '../../src/talos/patch.ts';
import { renderConfig, RenderError } from '../../src/talos/render.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const DIR = new URL('../fixtures/talos/examples/', import.meta.url);
const VERSION: Record<string, string> = { 'v1.11': 'v1.11.6', 'v1.12': 'v1.12.11', 'v1.13': 'v1.13.9', 'v1.14': 'v1.14.0' };
const secrets = fixtureSecrets();
const cluster = testCluster({ endpoint: 'https://192.0.2.100:6443' });

/** Talos 1.14's ControlplaneOnlyConfig kinds, read from its types (pkg/machinery/config/types/k8s). */
const CONTROLPLANE_ONLY = new Set([
  'KubeAdmissionControlConfig', 'KubeAggregatorCAConfig', 'KubeAPIServerConfig', 'KubeAuditPolicyConfig', 'KubeAuthenticationConfig',
  'KubeAuthorizerConfig', 'KubeControllerManagerConfig', 'KubeCoreDNSConfig', 'KubeEtcdEncryptionConfig', 'KubeFlannelCNIConfig',
  'KubeProxyConfig', 'KubeSchedulerConfig', 'KubeServiceAccountConfig', 'KubeTalosAPIAccessConfig',
]);

const examples = Object.keys(VERSION).flatMap((minor) =>
  readdirSync(new URL(`${minor}/`, DIR))
    .sort()
    .map((file) => [minor, file, readFileSync(new URL(`${minor}/${file}`, DIR), 'utf8')] as const),
);

describe("Talos's documented examples", () => {
  it('are all there: every kind each minor documents', () => {
    expect(examples.filter(([m]) => m === 'v1.11')).toHaveLength(17);
    expect(examples.filter(([m]) => m === 'v1.14')).toHaveLength(89);
  });

  describe.each(['controlplane', 'worker'] as const)('%s', (role) => {
    it.each(examples)('%s %s', (minor, file, text) => {
      const patch = parsePatch(text, file);
      const kinds = patch.kind === 'strategic' ? patch.documents.map((d) => String(d['kind'])) : [];
      if (role === 'worker' && kinds.some((k) => CONTROLPLANE_ONLY.has(k))) {
        // Talos 1.14 refuses these on a worker ("only allowed on control plane machines"), and so does Genesis.
        const refused = (() => {
          try {
            renderConfig({ cluster, secrets, node: { mac: '52:54:00:aa:bb:07', role, talosVersion: VERSION[minor]! }, patches: [patch] });
          } catch (err) {
            return err;
          }
        })();
        expect(refused).toBeInstanceOf(RenderError);
        expect((refused as RenderError).problems.join('\n')).toMatch(/: Talos allows it only on control plane machines: /);
        return;
      }
      let rendered;
      try {
        rendered = renderConfig({ cluster, secrets, node: { mac: '52:54:00:aa:bb:07', role, talosVersion: VERSION[minor]! }, patches: [patch] });
      } catch (err) {
        if (err instanceof RenderError) throw new Error(`${err.message}\n${err.problems.join('\n')}`, { cause: err });
        throw err;
      }
      for (const given of patch.kind === 'strategic' ? patch.documents : []) {
        const kept = rendered.documents.find((d) => d['kind'] === given['kind'] && d['name'] === given['name']);
        expect(kept, `${String(given['kind'])} ${String(given['name'] ?? '')}`).toBeDefined();
      }
    });
  });
});
