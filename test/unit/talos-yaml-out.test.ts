// documentYaml() must write exactly what yaml's stringify() writes with Talos's layout: it replaces
// it on the render path, and a scalar quoted differently is a different config to Talos (1.30 is
// a number, "1.30" a string). Compared over Talos's own generated configs, Genesis's renders for
// every minor and role (with patches that take the slow paths), and seeded random documents built
// from the strings, keys and shapes that YAML treats specially.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parsePatch } from '../../src/talos/patch.ts';
import { renderConfig } from '../../src/talos/render.ts';
import { documentYaml } from '../../src/talos/yaml-out.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const byYaml = (d: unknown) => stringify(d, { indent: 4, lineWidth: 0 });

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? yamlFiles(p) : p.endsWith('.yaml') ? [p] : [];
  });
}

describe('documentYaml', () => {
  it("writes Talos's generated configs as yaml does", () => {
    const files = yamlFiles(path.join(import.meta.dirname, '..', 'fixtures', 'talos', 'stability'));
    expect(files.length).toBeGreaterThanOrEqual(10);
    let documents = 0;
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        const value: unknown = doc.toJS();
        expect(documentYaml(value), file).toBe(byYaml(value));
        documents++;
      }
    }
    expect(documents).toBeGreaterThan(40);
  });

  it("writes Genesis's renders (every minor, both roles, patched) as yaml does", () => {
    const patches = [
      // A multi-line string (a block scalar), keys that need quotes, numbers, labels with dots.
      `cluster:\n  inlineManifests:\n    - name: ns\n      contents: |\n        apiVersion: v1\n        kind: Namespace\n        metadata:\n          name: "true"\n`,
      `machine:\n  sysctls:\n    net.ipv4.ip_forward: "1"\n    vm.max_map_count: "262144"\n    "weird key: yes": "#1"\n  nodeLabels:\n    topology.kubernetes.io/zone: rack-1\n  kubelet:\n    extraArgs:\n      max-pods: "250"\n      rotate-server-certificates: true\n`,
      `machine:\n  network:\n    nameservers: [1.1.1.1, 9.9.9.9]\n    interfaces:\n      - deviceSelector: { hardwareAddr: "52:54:00:*" }\n        dhcp: true\n        mtu: 9000\n`,
    ];
    for (const talosVersion of ['v1.11.6', 'v1.12.11', 'v1.13.9', 'v1.14.0']) {
      for (const role of ['controlplane', 'worker'] as const) {
        const rendered = renderConfig({
          cluster: testCluster({ endpoint: 'https://192.0.2.100:6443' }),
          secrets: fixtureSecrets(),
          node: { mac: '52:54:00:aa:bb:03', role, talosVersion, hostname: 'node-3' },
          patches: patches.map((p, i) => parsePatch(p, `patch ${i + 1}`)),
        });
        for (const d of rendered.documents) expect(documentYaml(d), `${talosVersion} ${role}`).toBe(byYaml(d));
      }
    }
  });

  it('writes random documents of awkward scalars and shapes as yaml does', () => {
    let seed = 0x9e3779b9;
    const random = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const words = [
      'x', 'true', 'True', 'TRUE', 'false', 'null', 'Null', 'NULL', '~', 'yes', 'no', 'on', 'off', 'y', 'n', 'Y',
      '', ' ', 'a b', ' lead', 'trail ', 'a: b', 'a:b', 'a:', 'a::', 'a #b', 'a#b', '#a', '-a', '- a', '-', '?', '? a', ':a',
      '1', '1.30', '1e3', '0x1F', '0o17', '+1', '-1', '.5', '.inf', '-.inf', '.nan', '.NaN', '10.96.0.0/12', '192.0.2.1',
      '1.2.3', 'v1.14.0', 'https://192.0.2.100:6443', 'factory.talos.dev/installer/abc:v1.14.0', 'LS0tLS1CRUdJTi+/==',
      '@x', 'x@y', '`x', '!x', '&x', '*x', '%x', '|x', '>x', "'x'", '"x"', '[x]', '{x}', 'x,y', 'x]', 'x}', 'a=b', '=',
      'ünïcode', 'tab\there', 'line\nbreak', 'cr\rhere', 'x\u0000y', '\u00a0nbsp', 'e', 'E5', 'Infinity', 'NaN', '0', '00', '-0',
      '2001:db8::1', '::1', 'a/b', '/dev/sda', '_under', 'a.b.c', 'Ω', 'x'.repeat(1100), 'k'.repeat(1030),
      '168h0m0s', '1h', '2001-12-14', '2001-12-14T21:59:43Z', '1:20', '12:30:00', '1_000', '0x1G', '0X1F', '0O17', '1e3x', '9.9.9.9',
      '0b101', '1e', '1.', '0o', '0x', '1-2', '1+2', '1e+3', '1E-3', '/livez', '//x', '/#x', '/ x', '/:', '/',
      'a\n', 'a\n\nb', ' a\nb', 'a\nb\n\n', 'a \nb', '\n', 'x\n  y', '-----BEGIN EXAMPLE BLOCK-----\nMIIB\n-----END EXAMPLE BLOCK-----\n',
      '-----BEGIN EXAMPLE LINES-----\nMHcC+/=\n-----END EXAMPLE LINES-----', '---\nx', '...\nx', '%x\ny', 'a\n---', 'a\n#b', 'a\n- b', 'a\nb: c\n',
      'a\n b', 'a\nb ', 'a\nb\t', 'a\r\nb', 'a\n\u00e9', '\u00e9\nb', 'a\nb\n ', 'a\n\n', '\na', 'a\n\tb', '|\nb', '>\nb', '"a\nb"',
      'disk.dev_path == "/dev/sda"', 'disk.size > 10u * GB && !disk.rotational', "it's", 'a "b"', 'a, b', 'a [b]', 'a {b}', 'a | b', 'a > b',
      'a: b', 'a :b', 'a # b', 'a #', 'a ', 'a  b', 'a\tb', 'f(x)', 'x && y', 'a - b', 'a ? b', '/ #x', '1 2', '1 #x', '0x1F ', '1.30 x', '10 GB',
    ];
    const numbers = [0, 1, -1, 42, 6443, 2 ** 53, 2 ** 53 + 2, 1.5, -0, 1e21, 0.1, Number.MAX_SAFE_INTEGER, 3.0];
    const chars = 'abcexoXYZ019   :#-_./@=+,[]{}!&*?|>%\'"`\\~()<>;$^\n\n\t';
    const digitsFirst = '0123456789';
    const randomString = () => (random() < 0.3 ? pick([...digitsFirst]) : '') + Array.from({ length: 1 + Math.floor(random() * 8) }, () => pick([...chars])).join('');
    const scalar = (): unknown => {
      const r = random();
      if (r < 0.45) return pick(words);
      if (r < 0.65) return randomString();
      if (r < 0.8) return pick(numbers);
      if (r < 0.9) return pick([true, false, null]);
      return pick(['a', 'b', 'LS0t']);
    };
    const shared = { reused: 'twice' };
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.5) return scalar();
      if (r < 0.53) return shared; // met again elsewhere: an alias in yaml's output
      if (r < 0.56) return pick([{}, []]);
      if (r < 0.75) return Array.from({ length: 1 + Math.floor(random() * 3) }, () => value(depth + 1));
      return map(depth + 1);
    };
    const map = (depth: number): Record<string, unknown> => {
      const m: Record<string, unknown> = {};
      for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++) {
        const key = random() < 0.6 ? pick(['name', 'machine', 'kind', 'net.ipv4.ip_forward', 'topology.kubernetes.io/zone', '_x', 'max-pods', 'A1']) : String(scalar());
        m[key] = value(depth);
      }
      return m;
    };
    for (let i = 0; i < 5000; i++) {
      const doc = random() < 0.9 ? map(0) : [map(1), value(1)];
      expect(documentYaml(doc), JSON.stringify(doc)).toBe(byYaml(doc));
    }
  });

  it('hands what is not a JSON tree to yaml', () => {
    const empty = {};
    for (const doc of [{}, [], 'text', 7, { a: undefined, b: 1 }, { when: new Date(0) }, { big: 10n }, { a: empty, b: empty }, [undefined], { m: new Map([['k', 1]]) }]) {
      expect(documentYaml(doc)).toBe(byYaml(doc));
    }
  });
});
