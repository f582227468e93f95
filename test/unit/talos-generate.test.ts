// The oracle: Talos's own generator output for a fixed bundle (test/fixtures/talos/stability),
// reproduced document for document for every supported version contract.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { contractFor, ContractError } from '../../src/talos/contract.ts';
import { generateDocuments } from '../../src/talos/generate.ts';
import { toYaml } from '../../src/talos/render.ts';
import { compiledSchemaCount, forgetCompiledSchemas, schemaProblems } from '../../src/talos/schema.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/talos/stability');
const secrets = parseSecrets(readFileSync(path.join(FIXTURES, 'secrets.yaml'), 'utf8'));
const docsOf = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);

describe.each(['v1.11', 'v1.12', 'v1.13', 'v1.14'])('Talos %s version contract', (version) => {
  describe.each(['controlplane', 'worker'] as const)('%s', (role) => {
    const want = docsOf(readFileSync(path.join(FIXTURES, version, `base-${role}.yaml`), 'utf8'));
    const got = generateDocuments({ contract: contractFor(version), secrets, role, clusterName: 'base', endpoint: 'https://base:6443', kubernetesVersion: '1.28.0' });

    it('reproduces talosctl gen config: same documents, keys and values', () => {
      expect(got).toEqual(want);
    });

    it('survives its own YAML encoding unchanged', () => {
      expect(docsOf(toYaml(got))).toEqual(want);
    });

    it("passes Talos's schema", () => {
      expect(schemaProblems(contractFor(version), got)).toEqual([]);
    });
  });
});

describe('version contracts', () => {
  it('accept release tags and minors of 1.11 to 1.14', () => {
    expect(contractFor('v1.14.0').minor).toBe(14);
    expect(contractFor('v1.14.0-rc.1').multidocKubernetes).toBe(true);
    expect(contractFor('v1.13.9').multidocKubernetes).toBe(false);
    expect(contractFor('v1.12.0-beta.1').minor).toBe(12);
    expect(contractFor('1.11').minor).toBe(11);
  });

  it.each(['v1.10.7', 'v1.15.0', 'v2.0.0', 'latest'])('refuse %s with the supported range', (v) => {
    expect(() => contractFor(v)).toThrow(ContractError);
    expect(() => contractFor(v)).toThrow(`Genesis renders machine configs for Talos v1.11 to v1.14; ${v} is not one of them`);
  });
});

describe('schema validation', () => {
  const contract = contractFor('v1.13.9');
  const base = () => generateDocuments({ contract, secrets, role: 'worker', clusterName: 'c', endpoint: 'https://c:6443', kubernetesVersion: '1.36.3' });

  it('names the field and the problem', () => {
    const docs = base();
    ((docs[0]!['machine'] as Record<string, unknown>)['install'] as Record<string, unknown>)['disk'] = ['/dev/sda'];
    (docs[0]!['machine'] as Record<string, unknown>)['frobnicate'] = true;
    expect(schemaProblems(contract, docs)).toEqual(['v1alpha1 config /machine: unknown field "frobnicate"', 'v1alpha1 config /machine/install/disk: must be string']);
  });

  it('checks every document by its kind, and refuses kinds the release does not have', () => {
    const docs = [...base().filter((d) => d['kind'] !== 'HostnameConfig'), { apiVersion: 'v1alpha1', kind: 'HostnameConfig', auto: 'sometimes' }, { apiVersion: 'v1alpha1', kind: 'TeleportConfig' }];
    expect(schemaProblems(contract, docs)).toEqual([
      'HostnameConfig document /auto: must be one of "stable", "off"',
      'TeleportConfig document: Talos v1.13 has no document kind "TeleportConfig"',
    ]);
  });

  it('refuses a document twice, as Talos does ("duplicate document")', () => {
    const docs = [...base(), { apiVersion: 'v1alpha1', kind: 'HostnameConfig', auto: 'off' }];
    expect(schemaProblems(contract, docs)).toEqual(['HostnameConfig document: appears more than once']);
  });

  it('1.14: kinds follow Talos\'s decoder, not the schema\'s misnamed ones', () => {
    const c14 = contractFor('v1.14.0');
    const docs = generateDocuments({ contract: c14, secrets, role: 'worker', clusterName: 'c', endpoint: 'https://c:6443', kubernetesVersion: '1.36.3', installDisk: '/dev/sda' });
    expect(docs.find((d) => d['kind'] === 'UnattendedInstallConfig')).toEqual({
      apiVersion: 'v1alpha1',
      kind: 'UnattendedInstallConfig',
      installer: {},
      provisioning: { diskSelector: { match: 'disk.dev_path == "/dev/sda"' }, wipe: false },
    });
    expect(schemaProblems(c14, docs)).toEqual([]);
    // The schema calls it "UnattendedInstall"; Talos registers "UnattendedInstallConfig" and decodes only that.
    const misnamed = docs.map((d) => (d['kind'] === 'UnattendedInstallConfig' ? { ...d, kind: 'UnattendedInstall' } : d));
    expect(schemaProblems(c14, misnamed)).toEqual(['UnattendedInstall document: Talos v1.14 has no document kind "UnattendedInstall" (did you mean "UnattendedInstallConfig"?)']);
    // Checked against its schema definition all the same.
    const typo = docs.map((d) => (d['kind'] === 'UnattendedInstallConfig' ? { ...d, provisioning: { wype: true } } : d));
    expect(schemaProblems(c14, typo)).toEqual(['UnattendedInstallConfig document /provisioning: unknown field "wype" (did you mean "wipe"?)']);
  });

  it('needs exactly one v1alpha1 config', () => {
    const [config, hostname] = base();
    expect(schemaProblems(contract, [hostname!])).toEqual(['the v1alpha1 config document is missing']);
    expect(schemaProblems(contract, [config!, config!])).toEqual(['v1alpha1 config: appears more than once']);
  });

  it('leaves the documents it checks as they were, the accepted fields it sets aside included', () => {
    const c11 = contractFor('v1.11.0');
    const docs = generateDocuments({ contract: c11, secrets, role: 'worker', clusterName: 'c', endpoint: 'https://c:6443', kubernetesVersion: '1.34.0' });
    // machine.network.interfaces[].cidr and …vlans[].cidr: accepted by 1.11's decoder, not in its schema.
    const interfaces = [
      { interface: 'eth0', cidr: '192.0.2.21/24', vlans: [{ vlanId: 10, cidr: '192.0.2.33/28' }, { vlanId: 11, cidr: '192.0.2.49/28' }] },
      { interface: 'eth1', cidr: '192.0.2.65/26', mtuu: 9000 },
    ];
    (docs[0]!['machine'] as Record<string, unknown>)['network'] = { interfaces };
    const before = structuredClone(docs);
    // Only the typo next to the set-aside fields is a problem: what is checked is the rest of each interface.
    expect(schemaProblems(c11, docs)).toEqual(['v1alpha1 config /machine/network/interfaces/1: unknown field "mtuu" (did you mean "mtu"?)']);
    expect(docs).toEqual(before);
    expect((docs[0]!['machine'] as Record<string, Record<string, unknown>>)['network']!['interfaces']).toBe(interfaces);
  });

  it('checks 1.11 against its own schema', () => {
    const c11 = contractFor('v1.11.0');
    const docs = generateDocuments({ contract: c11, secrets, role: 'controlplane', clusterName: 'c', endpoint: 'https://c:6443', kubernetesVersion: '1.34.0' });
    expect(schemaProblems(c11, docs)).toEqual([]);
    (docs[0]!['cluster'] as Record<string, unknown>)['clusterNmae'] = 'typo';
    expect(schemaProblems(c11, docs)).toEqual(['v1alpha1 config /cluster: unknown field "clusterNmae" (did you mean "clusterName"?)']);
  });
});

describe('schema validation after the compiled schemas are let go', () => {
  // What the checks find, for each minor: the generated configs, an unknown field, a wrong type, and
  // a typo under a deprecated section (checked against an older minor's schema).
  const cases = (version: string) => {
    const contract = contractFor(version);
    const docs = () => generateDocuments({ contract, secrets, role: 'worker', clusterName: 'c', endpoint: 'https://c:6443', kubernetesVersion: '1.36.3' });
    const broken = docs();
    const machine = broken[0]!['machine'] as Record<string, unknown>;
    machine['frobnicate'] = true;
    machine['install'] = { ...(machine['install'] as object), disk: ['/dev/sda'] };
    machine['network'] = { interfaces: [{ interface: 'eth0', dhcpp: true }] };
    return [() => schemaProblems(contract, docs()), () => schemaProblems(contract, broken)];
  };

  it.each(['v1.11', 'v1.12', 'v1.13', 'v1.14'])('%s: the same verdicts, from the kept validator sources, without compiling again', (version) => {
    const checks = cases(version);
    const before = checks.map((check) => check());
    expect(before[0]).toEqual([]);
    expect(before[1]).toEqual(expect.arrayContaining(['v1alpha1 config /machine: unknown field "frobnicate"', 'v1alpha1 config /machine/install/disk: must be string']));
    expect(before[1]!.some((p) => p.includes('unknown field "dhcpp"'))).toBe(true);
    forgetCompiledSchemas();
    expect(compiledSchemaCount()).toMatchObject({ minors: 0, validators: 0, compiler: false });
    expect(checks.map((check) => check())).toEqual(before);
    expect(compiledSchemaCount().compiler).toBe(false);
  });
});
