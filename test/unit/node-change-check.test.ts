// The operator's change rules (provision/node-change-check.ts) with a stub renderer: when a node
// patch is checked, against which role and record, and how a refusal reads.

import { describe, expect, it } from 'vitest';
import { blankNode, type Node, type Role } from '../../src/domain/node.ts';
import { checkNodeChange } from '../../src/provision/node-change-check.ts';

const MAC = '52:54:00:00:00:01';

function renderer(problems: string[] = [], warnings: string[] = []) {
  const asked: Array<{ node: Node; role: Role; patch: string }> = [];
  return { asked, checkNodePatch: (node: Node, role: Role, patch: string) => (asked.push({ node, role, patch }), { problems, warnings }) };
}

describe('checkNodeChange', () => {
  it('bootstrap: true only on a control plane (asked for now, or already)', () => {
    const r = renderer();
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'worker' }), { bootstrap: true }, r)).toEqual({ ok: false, code: 'invalid_request', message: 'bootstrap: true is for control planes: etcd is bootstrapped on one of them' });
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'worker' }), { bootstrap: true, role: 'controlplane' }, r)).toEqual({ ok: true, warnings: [] });
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'controlplane' }), { bootstrap: true }, r)).toEqual({ ok: true, warnings: [] });
  });

  it('no patch involved, nothing rendered; a version change re-checks the stored patch', () => {
    const r = renderer();
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'worker' }), { hostname: 'n1' }, r)).toEqual({ ok: true, warnings: [] });
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'worker', configPatch: 'machine: {}\n' }), { hostname: 'n1' }, r)).toEqual({ ok: true, warnings: [] });
    expect(r.asked).toEqual([]);
    checkNodeChange(MAC, blankNode(MAC, { role: 'worker', configPatch: 'machine: {}\n' }), { talosVersion: 'v1.13.2' }, r);
    expect(r.asked).toMatchObject([{ role: 'worker', patch: 'machine: {}\n', node: { talosVersion: 'v1.13.2' } }]);
  });

  it('the role checked: the new one, else the stored one, else worker (a machine not yet assigned, or a PUT creating it)', () => {
    const r = renderer();
    checkNodeChange(MAC, blankNode(MAC, { role: 'worker' }), { role: 'controlplane', configPatch: 'a: 1\n' }, r);
    checkNodeChange(MAC, blankNode(MAC, { role: 'controlplane' }), { configPatch: 'a: 1\n' }, r);
    checkNodeChange(MAC, blankNode(MAC), { configPatch: 'a: 1\n' }, r);
    checkNodeChange(MAC, undefined, { configPatch: 'a: 1\n', hostname: 'new' }, r);
    expect(r.asked.map((a) => a.role)).toEqual(['controlplane', 'controlplane', 'worker', 'worker']);
    expect(r.asked[3]!.node).toMatchObject({ mac: MAC, hostname: 'new' });
  });

  it('a patch that does not render is refused with its first problems; warnings pass through', () => {
    const bad = renderer(['machine.kubelet: unknown field "extraArgz"', 'two', 'three', 'four', 'five', 'six']);
    expect(checkNodeChange(MAC, blankNode(MAC, { role: 'worker' }), { configPatch: 'x' }, bad)).toEqual({
      ok: false,
      code: 'invalid_config_patch',
      message: 'configPatch: machine.kubelet: unknown field "extraArgz"; two; three; four; five',
    });
    const syntax = renderer(['configPatch: not valid YAML']);
    expect(checkNodeChange(MAC, undefined, { configPatch: 'x' }, syntax)).toMatchObject({ ok: false, message: 'configPatch: not valid YAML' });
    const moved = renderer([], ['machine.network.hostname moved to HostnameConfig']);
    expect(checkNodeChange(MAC, undefined, { configPatch: 'x' }, moved)).toEqual({ ok: true, warnings: ['machine.network.hostname moved to HostnameConfig'] });
  });
});
