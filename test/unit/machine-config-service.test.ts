// Serving machine configs (provision/machine-config.ts) against a scripted token store and a stub
// renderer: each outcome, what is recorded for the operator, and what the requester learns.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { blankNode, type EventType } from '../../src/domain/node.ts';
import type { ConfigTokenCheck, ConfigTokens } from '../../src/inventory/ports.ts';
import { MachineConfigService } from '../../src/provision/machine-config.ts';
import { RenderError, type RenderedConfig } from '../../src/talos/render.ts';

const MAC = '52:54:00:00:00:01';
const TOKEN = 'ab'.repeat(32);
const node = blankNode(MAC, { role: 'worker', state: 'assigned' });

function service(check: ConfigTokenCheck, opts: { consume?: ConfigTokenCheck; render?: () => RenderedConfig } = {}) {
  const events: Array<{ type: EventType; detail: Record<string, unknown> }> = [];
  const conflicts: Array<[string, [string, string]]> = [];
  const consumed: Array<Record<string, unknown>> = [];
  const issued: Array<{ hash: string; ip: string | null | undefined }> = [];
  const tokens: ConfigTokens = {
    record: (_mac, type, _actor, detail) => events.push({ type, detail }),
    issueConfigToken: (_mac, hash, _ttl, _fetches, ip) => (issued.push({ hash, ip }), { expiresAt: '2026-12-02T12:00:00.000Z' }),
    checkConfigToken: () => check,
    consumeConfigToken: (_mac, _hash, detail) => (consumed.push(detail), opts.consume ?? (check.ok ? { ...check, fetchesLeft: check.fetchesLeft - 1 } : check)),
    recordTokenConflict: (mac, addresses) => conflicts.push([mac, addresses]),
    atomicallyShared: async (fn) => fn(),
  };
  const rendered = { yaml: 'version: v1alpha1\n', sha256: 'f'.repeat(64), warnings: [], documents: [], contract: {} } as unknown as RenderedConfig;
  const s = new MachineConfigService({
    inventory: tokens,
    renderer: { renderServed: opts.render ?? (() => rendered) },
    defaultTalosVersion: 'v1.14.0',
    tokenTtlMs: 3600_000,
    tokenFetches: 3,
    log: pino({ level: 'silent' }),
  });
  return { s, events, conflicts, consumed, issued };
}

describe('MachineConfigService', () => {
  it('issues a hex token and stores only its hash, bound to the address', () => {
    const { s, issued } = service({ ok: true, node, fetchesLeft: 3 });
    const token = s.issueToken(MAC, '192.0.2.10');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(issued).toEqual([{ hash: expect.not.stringContaining(token), ip: '192.0.2.10' }]);
    expect(issued[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('served: the YAML, one fetch spent, the record says what was served', async () => {
    const { s, consumed } = service({ ok: true, node, fetchesLeft: 3 });
    expect(await s.serve(MAC, TOKEN, '192.0.2.10')).toEqual({ outcome: 'served', yaml: 'version: v1alpha1\n' });
    expect(consumed).toEqual([{ ip: '192.0.2.10', role: 'worker', talosVersion: 'v1.14.0', sha256: 'f'.repeat(64) }]);
  });

  it('a malformed token or MAC is denied without asking the store', async () => {
    const { s, events, consumed } = service({ ok: true, node, fetchesLeft: 3 });
    expect(await s.serve(MAC, 'not-hex', '192.0.2.10')).toEqual({ outcome: 'denied', reason: 'bad-request' });
    expect(await s.serve(undefined, TOKEN, '192.0.2.10')).toEqual({ outcome: 'denied', reason: 'bad-request' });
    expect(events).toEqual([]);
    expect(consumed).toEqual([]);
  });

  it('denied: the reason recorded on the node at most once a minute, never the token', async () => {
    const { s, events } = service({ ok: false, reason: 'wrong-token', node });
    for (let i = 0; i < 5; i++) expect(await s.serve(MAC, TOKEN, '192.0.2.66')).toEqual({ outcome: 'denied', reason: 'wrong-token' });
    expect(events).toEqual([{ type: 'config-denied', detail: { reason: 'wrong-token', ip: '192.0.2.66' } }]);
    expect(JSON.stringify(events)).not.toContain(TOKEN);
  });

  it('the right token from another address: both claimants held', async () => {
    const { s, conflicts } = service({ ok: false, reason: 'other-address', node, tokenIp: '192.0.2.10' });
    expect(await s.serve(MAC, TOKEN, '192.0.2.66')).toEqual({ outcome: 'denied', reason: 'other-address' });
    expect(conflicts).toEqual([[MAC, ['192.0.2.10', '192.0.2.66']]]);
  });

  it('unrenderable: nothing spent, the reason recorded for the operator', async () => {
    const { s, events, consumed } = service({ ok: true, node, fetchesLeft: 3 }, { render: () => { throw new RenderError('patch failed', ['machine.kubelet: unknown field "extraArgz"']); } });
    expect(await s.serve(MAC, TOKEN, '192.0.2.10')).toEqual({ outcome: 'unrenderable', reason: 'patch failed: machine.kubelet: unknown field "extraArgz"' });
    expect(consumed).toEqual([]);
    expect(events).toEqual([{ type: 'config-failed', detail: { reason: 'patch failed: machine.kubelet: unknown field "extraArgz"', problems: ['machine.kubelet: unknown field "extraArgz"'] } }]);
  });

  it('two fetches racing for the last one: the loser is denied by the spend, not served', async () => {
    const { s } = service({ ok: true, node, fetchesLeft: 1 }, { consume: { ok: false, reason: 'used-up', node } });
    expect(await s.serve(MAC, TOKEN, '192.0.2.10')).toEqual({ outcome: 'denied', reason: 'used-up' });
  });
});
