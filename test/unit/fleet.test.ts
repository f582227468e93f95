// The fleet file: parsing with positions, the plan's rules, and the reconciler against a real
// SQLite inventory (the renderer is a fake here; test/integration/fleet.test.ts renders for real).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blankNode, type Node, type NodeChanges, type Role } from '../../src/domain/node.ts';
import { formatPlan } from '../../src/fleet/diff-text.ts';
import { gitCommit } from '../../src/fleet/git.ts';
import { FleetError, parseFleet } from '../../src/fleet/parse.ts';
import { planChanges, planFleet, samePatch } from '../../src/fleet/plan.ts';
import { parsePatch } from '../../src/talos/patch.ts';
import { FleetReconciler, type FleetRenderer } from '../../src/fleet/reconciler.ts';
import { sourceFromFiles } from '../../src/fleet/source.ts';
import { problemsOf } from '../helpers/problems.ts';
import { Inventory } from '../../src/inventory/store.ts';

const HEADER = 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n';
const source = (text: string, extra: Record<string, string> = {}) => sourceFromFiles({ 'fleet.yaml': text, ...extra }, ['fleet.yaml']);
const parse = (text: string, extra: Record<string, string> = {}) => parseFleet(source(text, extra));

describe('parsing: every problem with its file, line and column', () => {
  it('a YAML error', () => {
    const p = problemsOf(() => parse(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: [worker\n`), FleetError);
    expect(p[0]!.at).toBe('fleet.yaml:6:1'); // where the unclosed flow sequence is found to be unclosed
    expect(p[0]!.message).toMatch(/not valid YAML/);
  });

  it('schema errors point at the offending key or value', () => {
    const text = `${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    rolee: worker\n  - mac: 52:54:00:00:00:02\n    role: king\n`;
    const p = problemsOf(() => parse(text), FleetError);
    expect(p).toContainEqual({ at: 'fleet.yaml:5:5', message: 'machines[0].rolee: unknown field (did you mean role?)' });
    expect(p).toContainEqual({ at: 'fleet.yaml:7:11', message: 'machines[1].role: must be one of "unassigned", "controlplane", "worker"' });
  });

  it('an unknown field names the nearest one the schema has there, and only one near enough', () => {
    const text = `${HEADER}defaults:\n  unlistd: wait\nmachines:\n  - mac: 52:54:00:00:00:01\n    installDsk: /dev/sda\n    power: {methd: wol}\n    frobnicate: 1\n`;
    const messages = problemsOf(() => parse(text), FleetError).map((q) => q.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        'defaults.unlistd: unknown field (did you mean unlisted?)',
        'machines[0].installDsk: unknown field (did you mean installDisk?)',
        'machines[0].power.methd: unknown field (did you mean method?)',
        'machines[0].frobnicate: unknown field',
      ]),
    );
  });

  it('the header is required and versioned', () => {
    expect(problemsOf(() => parse('kind: Fleet\nmachines: []\n'), FleetError)[0]!.message).toBe('(top level): apiVersion is required');
    expect(problemsOf(() => parse('apiVersion: genesis.dev/v2\nkind: Fleet\n'), FleetError)[0]).toEqual({ at: 'fleet.yaml:1:13', message: 'apiVersion: must be "genesis.dev/v1alpha1"' });
  });

  it('rules a schema cannot say: host names, one bootstrap control plane, mac or match, duplicates', () => {
    const text = `${HEADER}machines:
  - mac: 52:54:00:00:00:01
    hostname: Not_A_Name
  - mac: 52:54:00:00:00:02
    role: worker
    bootstrap: true
  - mac: 52-54-00-00-00-03
    role: controlplane
    bootstrap: true
  - mac: 52:54:00:00:00:03
  - role: worker
  - match: {macPrefix: "dc:a6:32"}
    hostname: pi
  - mac: 01:00:5e:00:00:01
`;
    const messages = problemsOf(() => parse(text), FleetError).map((p) => `${p.at} ${p.message}`);
    expect(messages).toContain('fleet.yaml:4:5 machines[0]: hostname "Not_A_Name" is not a valid lower-case RFC 1123 host name');
    expect(messages).toContain('fleet.yaml:6:5 bootstrap: true needs role: controlplane (only a control plane bootstraps etcd)');
    expect(messages.some((m) => m.startsWith('fleet.yaml:9:5 bootstrap: true is set on 2 machines'))).toBe(true);
    expect(messages).toContain('fleet.yaml:12:5 machines[3]: 52:54:00:00:00:03 is listed twice (also at fleet.yaml:9:5)');
    expect(messages).toContain('fleet.yaml:13:5 machines[4]: give mac (one machine) or match (a rule), not neither');
    expect(messages).toContain('fleet.yaml:15:5 machines[5].hostname: belongs to one machine; a match rule cannot set it');
    expect(messages).toContain('fleet.yaml:16:10 machines[6].mac: "01:00:5e:00:00:01" is not a unicast MAC address');
  });

  it('patches: inline or a file inside the fleet directory, checked as Talos patches', () => {
    const ok = parse(`${HEADER}patches:\n  cluster: {file: patches/all.yaml}\n  worker:\n    inline:\n      machine: {sysctls: {a: "1"}}\n`, {
      'patches/all.yaml': 'machine:\n  time: {servers: [192.0.2.1]}\n',
    });
    expect(ok.patches.cluster).toEqual({ text: 'machine:\n  time: {servers: [192.0.2.1]}\n', label: 'patches/all.yaml' });
    expect(ok.patches.worker!.text).toContain('sysctls');
    expect(ok.files).toHaveProperty(['patches/all.yaml']);
    const bad = problemsOf(() =>
      parse(`${HEADER}patches:\n  cluster: {file: ../etc/passwd}\n  worker: {file: missing.yaml}\n  controlplane: {inline: "- just\\n- a list\\n"}\n`),
      FleetError,
    );
    expect(bad.map((p) => p.message)).toEqual([
      'patches.cluster.file: "../etc/passwd" must be a relative path inside the fleet\'s directory',
      'fleet.yaml:6:17 (inline): JSON patch operation 0 needs op (add, remove, replace or test) and path',
      'patches.worker.file: cannot read missing.yaml: ENOENT',
    ]);
  });

  it('a section set in two files of a directory is refused (the result would depend on file order)', () => {
    const files = { 'a.yaml': `${HEADER}cluster: {name: one}\n`, 'b.yaml': `${HEADER}cluster: {name: two}\n` };
    const p = problemsOf(() => parseFleet(sourceFromFiles(files, ['a.yaml', 'b.yaml'])), FleetError);
    expect(p).toEqual([{ at: 'b.yaml:3:11', message: 'cluster.name is also set in a.yaml:3:11; set it in one file' }]);
  });
});

const node = (mac: string, over: Partial<Node> = {}) => blankNode(mac, { firstSeen: '2026-01-01T00:00:00.000Z', ...over });

describe('the plan', () => {
  it("a role change never reaches an installed machine without reinstall, and the refusal names it", () => {
    const fleet = parse(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: controlplane\n`);
    const installed = [node('52:54:00:00:00:01', { role: 'worker', state: 'installed' })];
    expect(planFleet(fleet, installed, { prune: false }).problems).toEqual([
      {
        at: 'fleet.yaml:4:5',
        message: '52:54:00:00:00:01 is installed as a worker: its role changes to controlplane only with reinstall: true in the same entry (it is then wiped and reinstalled at its next boot)',
      },
    ]);
    const withReinstall = parse(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: controlplane\n    reinstall: true\n`);
    const plan = planFleet(withReinstall, installed, { prune: false });
    expect(plan.problems).toEqual([]);
    expect(plan.nodes[0]).toMatchObject({ kind: 'update', reinstall: true, changes: { role: 'controlplane' } });
    // Not yet installed: the role just changes.
    expect(planFleet(fleet, [node('52:54:00:00:00:01', { role: 'worker', state: 'assigned' })], { prune: false }).problems).toEqual([]);
  });

  it('unlisted machines: reported; with prune deleted, except ones waiting unassigned; a machine the file let go is released', () => {
    const fleet = parse(`${HEADER}machines: []\n`);
    const nodes = [node('52:54:00:00:00:01', { role: 'worker', state: 'installed', fleetFields: ['role'] }), node('52:54:00:00:00:02')];
    const kept = planFleet(fleet, nodes, { prune: false });
    expect(kept.unlisted).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
    expect(kept.nodes).toMatchObject([{ mac: '52:54:00:00:00:01', kind: 'release', fields: [] }]);
    expect(planChanges(kept)).toBe(false);
    const pruned = planFleet(fleet, nodes, { prune: true });
    expect(pruned.nodes).toMatchObject([{ mac: '52:54:00:00:00:01', kind: 'prune' }]);
    expect(pruned.unlisted).toEqual(['52:54:00:00:00:02']);
    expect(formatPlan(pruned, { prune: true })).toContain('- 52:54:00:00:00:01: not in the fleet file; deleted (fleet.prune)');
  });

  it('values equal to the inventory are no change; taking ownership of them is not either', () => {
    const fleet = parse(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: worker\n    labels: {a: b}\n    patch:\n      inline: |\n        # a comment\n        machine: {sysctls: {x: "1"}}\n`);
    const plan = planFleet(fleet, [node('52:54:00:00:00:01', { role: 'worker', labels: { a: 'b' }, configPatch: 'machine:\n  sysctls:\n    x: "1"\n' })], { prune: false });
    expect(plan.nodes).toMatchObject([{ kind: 'update', diffs: [], fields: ['configPatch', 'labels', 'role'] }]);
    expect(planChanges(plan)).toBe(false);
    expect(samePatch('a: 1\n', 'a: 2\n')).toBe(false);
    // Read as Talos reads it: the same octal either way, but a label `01` is not `1`.
    expect(samePatch('permissions: 0644\n', '# same\npermissions:   0644\n')).toBe(true);
    expect(samePatch('zone: 01\n', 'zone: 1\n')).toBe(false);
  });

  it('an inline patch given as a mapping is read as written: octal stays octal, a label 01 stays "01"', () => {
    const patch = '      machine:\n        files:\n          - {content: x, permissions: 0644, path: /var/etc/a, op: create}\n        nodeLabels: {zone: 01}   # a comment\n';
    const block = parse(`${HEADER}patches:\n  worker:\n    inline:\n${patch}machines:\n  - mac: 52:54:00:00:00:01\n    patch:\n      inline: {machine: {nodeLabels: {rack: 007}}}\n`);
    // Stored as a patch file would hold it: the block's own indentation taken off.
    expect(block.patches.worker!.text).toBe(patch.replace(/^ {6}/gm, ''));
    const worker = parsePatch(block.patches.worker!.text, 'worker');
    expect(worker.kind === 'strategic' && worker.documents[0]).toEqual({ machine: { files: [{ content: 'x', permissions: 0o644, path: '/var/etc/a', op: 'create' }], nodeLabels: { zone: 1 } } });
    expect(worker.texts.get(1)?.get('zone')).toEqual(new Set(['01']));
    const own = parsePatch(block.machines[0]!.changes.configPatch!, 'node');
    expect(own.texts.get(7)?.get('rack')).toEqual(new Set(['007']));
  });

  it('a host name the file gives that another machine keeps is a problem', () => {
    const fleet = parse(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    hostname: n1\n`);
    const plan = planFleet(fleet, [node('52:54:00:00:00:02', { hostname: 'n1' })], { prune: false });
    expect(plan.problems).toEqual([{ at: 'fleet.yaml:4:5', message: 'hostname n1 is held by 52:54:00:00:00:02, which keeps it' }]);
  });

  it('a match rule lists the machines it matches; an entry by MAC comes first', () => {
    const fleet = parse(`${HEADER}machines:
  - mac: dc:a6:32:00:00:01
    role: controlplane
  - match: {macPrefix: "DC-A6-32", arch: arm64}
    role: worker
    labels: {board: rpi}
`);
    const plan = planFleet(fleet, [node('dc:a6:32:00:00:01', { arch: 'arm64' }), node('dc:a6:32:00:00:02', { arch: 'arm64' }), node('dc:a6:32:00:00:03', { arch: 'amd64' })], { prune: false });
    expect(plan.nodes.map((n) => [n.mac, n.changes.role])).toEqual([
      ['dc:a6:32:00:00:01', 'controlplane'],
      ['dc:a6:32:00:00:02', 'worker'],
    ]);
    expect(plan.unlisted).toEqual(['dc:a6:32:00:00:03']);
  });
});

describe('the reconciler, against a real inventory', () => {
  let dir: string;
  let inventory: Inventory;
  let unrenderable: Set<string>;
  let patchTexts: unknown;
  const renderer: FleetRenderer = {
    setPatchTexts: (p) => {
      patchTexts = p;
    },
    withPatchTexts: () => ({ renderProblems: (n: Node) => (unrenderable.has(n.mac) ? ['machine.install.disk: no such disk'] : []) }),
    patchTextsInForce: () => ({}),
  };
  const reconciler = (opts: { prune?: boolean } = {}) =>
    new FleetReconciler({
      inventory,
      renderer,
      running: (key) => (key === 'cluster.name' ? 'homelab' : undefined),
      baseAutoAssign: { enabled: false, controlplanes: 3 },
      path: '',
      prune: opts.prune ?? false,
      dataDir: dir,
      log: pino({ level: 'silent' }),
    });
  const snapshot = () => JSON.stringify(inventory.list().map((n) => ({ ...n, updatedAt: '' })));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'genesis-fleet-'));
    inventory = Inventory.open(path.join(dir, 'genesis.db'));
    unrenderable = new Set();
    patchTexts = undefined;
  });
  afterEach(() => {
    inventory.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies in one go, records who and where, and a second apply changes nothing', () => {
    inventory.recordBoot('52:54:00:00:00:02', { ip: '192.0.2.2', arch: 'amd64' });
    const text = `${HEADER}cluster: {name: lab}\npatches:\n  worker: {inline: {machine: {sysctls: {a: "1"}}}}\nmachines:\n  - mac: 52:54:00:00:00:01\n    role: controlplane\n    hostname: cp1\n  - mac: 52:54:00:00:00:02\n    role: worker\n`;
    const r = reconciler().apply(source(text), { origin: 'api' });
    expect(r.changed).toBe(true);
    expect(r.restartNeeded).toEqual([{ key: 'cluster.name', running: 'homelab', file: 'lab', from: 'fleet.yaml:3:11' }]);
    expect(inventory.get('52:54:00:00:00:01')).toMatchObject({ role: 'controlplane', hostname: 'cp1', state: 'assigned', fleetFields: ['hostname', 'role'] });
    expect(inventory.get('52:54:00:00:00:02')).toMatchObject({ role: 'worker', fleetFields: ['role'] });
    const events = inventory.events('52:54:00:00:00:02').filter((e) => e.type === 'fleet-change');
    expect(events).toMatchObject([{ actor: 'fleet-file', detail: { file: 'fleet.yaml:10:5', changes: { role: 'worker' } } }]);
    expect(patchTexts).toMatchObject({ worker: { text: expect.stringContaining('sysctls') } });
    const before = snapshot();
    const again = reconciler().apply(source(text), { origin: 'api' });
    expect(again.changed).toBe(false);
    expect(again.text).toBe('');
    expect(snapshot()).toBe(before);
  });

  it('a config that would not render changes nothing, and says which machine and why', () => {
    inventory.recordBoot('52:54:00:00:00:02', { ip: '192.0.2.2' });
    unrenderable.add('52:54:00:00:00:02');
    const before = snapshot();
    const p = problemsOf(() => reconciler().apply(source(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: worker\n  - mac: 52:54:00:00:00:02\n    role: worker\n`), { origin: 'api' }), FleetError);
    expect(p).toEqual([{ at: 'fleet.yaml:6:5', message: '52:54:00:00:00:02: its config would not render: machine.install.disk: no such disk' }]);
    expect(snapshot()).toBe(before);
  });

  it('a match rule gives a machine its settings in the transaction that discovers it', () => {
    reconciler().apply(source(`${HEADER}machines:\n  - match: {macPrefix: "dc:a6:32", product: "Raspberry Pi 4 Model B"}\n    role: worker\n    labels: {board: rpi4}\n`), { origin: 'api' });
    const rec = inventory.recordBoot('dc:a6:32:01:02:03', { ip: '192.0.2.7', arch: 'arm64', product: 'raspberry pi 4 model b' });
    expect(rec.node).toMatchObject({ role: 'worker', state: 'assigned', labels: { board: 'rpi4' }, fleetFields: ['labels', 'role'] });
    expect(inventory.events('dc:a6:32:01:02:03').map((e) => [e.type, e.actor])).toEqual([
      ['state-changed', 'fleet-file'],
      ['fleet-change', 'fleet-file'],
      ['discovered', 'boot'],
    ]); // newest first
    const other = inventory.recordBoot('52:54:00:01:02:03', { ip: '192.0.2.8', arch: 'amd64' });
    expect(other.node.role).toBe('unassigned');
  });

  it('defaults: auto-assign for unlisted machines, in force at once', () => {
    reconciler().apply(source(`${HEADER}defaults:\n  unlisted: auto-assign\n  autoAssign: {mode: all, controlplanes: 1}\n`), { origin: 'api' });
    expect(inventory.recordBoot('52:54:00:00:00:01', { ip: '192.0.2.1' }).node.role).toBe('controlplane');
    expect(inventory.recordBoot('52:54:00:00:00:02', { ip: '192.0.2.2' }).node.role).toBe('worker');
  });

  it('prune on and off', () => {
    inventory.update('52:54:00:00:00:09', { role: 'worker' }, 'api', { create: true });
    inventory.recordBoot('52:54:00:00:00:0a', { ip: '192.0.2.10' });
    const text = `${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: worker\n`;
    expect(reconciler().apply(source(text), { origin: 'api' }).plan.unlisted).toEqual(['52:54:00:00:00:09', '52:54:00:00:00:0a']);
    expect(inventory.get('52:54:00:00:00:09')).toBeDefined();
    reconciler({ prune: true }).apply(source(text), { origin: 'api' });
    expect(inventory.get('52:54:00:00:00:09')).toBeUndefined();
    expect(inventory.events('52:54:00:00:00:09')[0]).toMatchObject({ type: 'deleted', actor: 'fleet-file' });
    // Still waiting for an operator: kept.
    expect(inventory.get('52:54:00:00:00:0a')).toBeDefined();
  });

  it('a role change with reinstall: true requests the reinstall', () => {
    inventory.update('52:54:00:00:00:01', { role: 'worker' }, 'api', { create: true });
    inventory.setState('52:54:00:00:00:01', 'installed', 'test');
    reconciler().apply(source(`${HEADER}machines:\n  - mac: 52:54:00:00:00:01\n    role: controlplane\n    reinstall: true\n`), { origin: 'api' });
    expect(inventory.get('52:54:00:00:00:01')).toMatchObject({ role: 'controlplane', state: 'reinstall-requested' });
  });

  it('export, then apply of the export: no change (fields set by clicks become the file\'s)', () => {
    inventory.update('52:54:00:00:00:01', { role: 'controlplane', hostname: 'cp1', bootstrap: true, labels: { zone: 'a' }, diskSelector: { size: '>= 100GB' } }, 'api', { create: true });
    inventory.update('52:54:00:00:00:02', { role: 'worker', configPatch: 'machine:\n  sysctls:\n    a: "1"\n', network: { address: '192.0.2.20/24', gateway: '192.0.2.1' }, localBoot: 'sanboot', power: { method: 'manual' } }, 'api', { create: true });
    inventory.setState('52:54:00:00:00:02', 'installed', 'test');
    inventory.recordBoot('52:54:00:00:00:03', { ip: '192.0.2.3', arch: 'arm64', product: 'Pi' });
    const exported = reconciler().export();
    expect(exported).toContain('# 52:54:00:00:00:03: discovered');
    const before = snapshot();
    const r = reconciler().apply(source(exported), { origin: 'api' });
    expect(r.changed).toBe(false);
    expect(JSON.parse(snapshot()).map((n: Node) => ({ ...n, fleetFields: [] }))).toEqual(JSON.parse(before));
    expect(inventory.get('52:54:00:00:00:01')!.fleetFields).toEqual(['bootstrap', 'diskSelector', 'hostname', 'installDisk', 'labels', 'role']);
  });

  it('property: random fleets against random inventories apply exactly, or not at all, and a second apply changes nothing', () => {
    // mulberry32: small, seeded, and its low bits are as good as its high ones.
    let seed = 20261202;
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const pick = <T>(xs: readonly T[]) => xs[rand(xs.length)]!;
    const macs = Array.from({ length: 8 }, (_, i) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`);
    const roles: Role[] = ['unassigned', 'controlplane', 'worker'];
    const outcomes = { applied: 0, refused: 0 };
    for (let trial = 0; trial < 150; trial++) {
      for (const n of inventory.list()) inventory.delete(n.mac, 'test');
      for (const mac of macs) {
        if (rand(2)) continue;
        const changes: NodeChanges = { role: pick(roles) };
        if (rand(3) === 0) changes.hostname = `h${rand(4)}`;
        if (inventory.list().some((n) => n.hostname && n.hostname === changes.hostname)) delete changes.hostname;
        inventory.update(mac, changes, 'api', { create: true });
        if (changes.role !== 'unassigned' && rand(2)) inventory.setState(mac, 'installed', 'test');
      }
      const entries = macs
        .filter(() => rand(2))
        .map((mac) => {
          const lines = [`  - mac: ${mac}`];
          if (rand(2)) lines.push(`    role: ${pick(roles)}`);
          if (rand(3) === 0) lines.push(`    hostname: h${rand(4)}`);
          if (rand(3) === 0) lines.push(`    labels: {tier: t${rand(2)}}`);
          if (rand(4) === 0) lines.push('    reinstall: true');
          return lines.join('\n');
        });
      const text = `${HEADER}machines:\n${entries.join('\n') || '  []'}\n`.replace('machines:\n  []', 'machines: []');
      const prune = rand(2) === 1;
      const before = snapshot();
      let applied = true;
      try {
        reconciler({ prune }).apply(source(text), { origin: 'api' });
      } catch (err) {
        if (!(err instanceof FleetError)) throw err;
        applied = false;
      }
      outcomes[applied ? 'applied' : 'refused']++;
      if (!applied) {
        expect(snapshot(), `trial ${trial}: a refused fleet changed the inventory`).toBe(before);
        continue;
      }
      const fleet = parse(text);
      for (const m of fleet.machines) {
        const n = inventory.get(m.mac!)!;
        for (const [k, v] of Object.entries(m.changes)) expect(n[k as keyof Node], `trial ${trial}: ${m.mac} ${k}`).toEqual(v);
      }
      const again = planFleet(fleet, inventory.list(), { prune });
      expect(again.problems, `trial ${trial}`).toEqual([]);
      expect(again.nodes, `trial ${trial}: a second apply would change something`).toEqual([]);
    }
    // The generator reaches both sides (fixed seed: the same trials every run).
    expect(outcomes.applied).toBeGreaterThan(30);
    expect(outcomes.refused).toBeGreaterThan(10);
  });
});

describe('the git commit of a fleet directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'genesis-git-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const sha = 'a'.repeat(40);

  it('from a branch ref, from packed-refs, from a detached HEAD, through a worktree file; none outside git', () => {
    expect(gitCommit(dir)).toBeUndefined();
    mkdirSync(path.join(dir, '.git/refs/heads'), { recursive: true });
    mkdirSync(path.join(dir, 'fleet'));
    writeFileSync(path.join(dir, '.git/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(dir, '.git/packed-refs'), `# pack-refs with: peeled\n${'b'.repeat(40)} refs/heads/main\n`);
    expect(gitCommit(path.join(dir, 'fleet'))).toBe('b'.repeat(40));
    writeFileSync(path.join(dir, '.git/refs/heads/main'), `${sha}\n`);
    expect(gitCommit(path.join(dir, 'fleet'))).toBe(sha);
    writeFileSync(path.join(dir, '.git/HEAD'), `${'c'.repeat(40)}\n`);
    expect(gitCommit(dir)).toBe('c'.repeat(40));
    const wt = path.join(dir, 'wt');
    mkdirSync(path.join(dir, '.git/worktrees/wt'), { recursive: true });
    mkdirSync(wt);
    writeFileSync(path.join(wt, '.git'), `gitdir: ${path.join(dir, '.git/worktrees/wt')}\n`);
    writeFileSync(path.join(dir, '.git/worktrees/wt/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(dir, '.git/worktrees/wt/commondir'), '../..\n');
    expect(gitCommit(wt)).toBe(sha);
  });
});

describe('patch files on disk', () => {
  it('a symlink out of the fleet directory is refused like ../', async () => {
    const { readFleetSource } = await import('../../src/fleet/source.ts');
    const { symlinkSync } = await import('node:fs');
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-fleet-link-'));
    try {
      writeFileSync(path.join(dir, 'outside.yaml'), 'machine:\n  env:\n    SECRET: x\n');
      mkdirSync(path.join(dir, 'fleet/patches'), { recursive: true });
      symlinkSync(path.join(dir, 'outside.yaml'), path.join(dir, 'fleet/patches/worker.yaml'));
      writeFileSync(path.join(dir, 'fleet/patches/inside.yaml'), 'machine:\n  sysctls:\n    a: "1"\n');
      writeFileSync(path.join(dir, 'fleet/fleet.yaml'), `${HEADER}patches:\n  worker: {file: patches/worker.yaml}\n  cluster: {file: patches/inside.yaml}\n`);
      const p = problemsOf(() => parseFleet(readFleetSource(path.join(dir, 'fleet'))), FleetError);
      expect(p).toEqual([{ at: 'fleet.yaml:4:11', message: 'patches.worker.file: cannot read patches/worker.yaml: outside the fleet directory' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
