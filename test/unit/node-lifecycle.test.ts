// The lifecycle rules on their own: every role × state × window × conflict × event, checked
// against the invariants the rules promise, then the transitions one by one.

import { describe, expect, it } from 'vitest';
import { BOOT_STATES, ROLES, type BootState, type Role } from '../../src/domain/node.ts';
import { conflictHoldText, WINDOW_CLOSED_HOLD } from '../../src/ipxe/plan.ts';
import { applyLifecycle, holdLifted, stateForRole, UNSEEN, type LifecycleEvent, type LifecycleFields } from '../../src/inventory/node-lifecycle.ts';

const END = '2026-12-02T18:00:00.000Z';
const EARLIER = '2026-12-02T12:00:00.000Z';
const ctx = { windowEnd: END };

/** Every node these rules can meet, the impossible ones included: the rules must not depend on them being absent. */
function everyNode(): LifecycleFields[] {
  const out: LifecycleFields[] = [];
  for (const role of ROLES)
    for (const state of BOOT_STATES)
      for (const window of [
        { windowUntil: null, windowIp: null },
        { windowUntil: EARLIER, windowIp: null },
        { windowUntil: EARLIER, windowIp: '192.0.2.10' },
      ])
        for (const conflict of [null, 'two machines claim this MAC']) out.push({ role, state, ...window, conflict });
  return out;
}

function everyEvent(): LifecycleEvent[] {
  const out: LifecycleEvent[] = [];
  for (const role of ROLES) {
    out.push({ type: 'discovered', role, ip: '192.0.2.20' });
    out.push({ type: 'role-set', role });
  }
  for (const to of BOOT_STATES) out.push({ type: 'state-requested', to });
  out.push({ type: 'config-served' }, { type: 'install-reported' }, { type: 'address-conflict', addresses: ['192.0.2.10', '192.0.2.11'] });
  out.push({ type: 'machine-confirmed', ip: '192.0.2.10' }, { type: 'machine-confirmed', ip: null });
  return out;
}

describe('node lifecycle: invariants over every node and event', () => {
  const nodes = everyNode();
  const events = everyEvent();

  it(`holds for all ${nodes.length} × ${events.length} pairs`, () => {
    let applied = 0;
    let refused = 0;
    for (const node of nodes) {
      for (const event of events) {
        // Discovery is what happens to a machine never seen, and only to one.
        if (event.type === 'discovered' && JSON.stringify(node) !== JSON.stringify(UNSEEN)) continue;
        const out = applyLifecycle(node, event, ctx);
        const where = `${JSON.stringify(node)} + ${JSON.stringify(event)}`;
        if (!out.ok) {
          refused++;
          // Only a machine without a role is refused, and only for what needs a role.
          expect(node.role, where).toBe('unassigned');
          expect(['state-requested', 'machine-confirmed'], where).toContain(event.type);
          continue;
        }
        applied++;
        const n = out.next;
        // No role: discovered, no window, no hold, no token.
        if (n.role === 'unassigned' && node.role !== 'unassigned') {
          expect(n, where).toMatchObject({ state: 'discovered', windowUntil: null, windowIp: null, conflict: null });
          expect(out.revokeToken, where).toBe(true);
        }
        // Installed by this event: the window closes, the token goes, and no conflict stays.
        if (n.state === 'installed' && node.state !== 'installed') {
          expect(n.windowUntil, where).toBeNull();
          expect(n.conflict, where).toBeNull();
          expect(out.revokeToken, where).toBe(true);
        }
        // Nothing opens a window on an installed machine or raises a conflict on it.
        if (n.state === 'installed') {
          expect(n.windowUntil, where).not.toBe(END);
          if (n.conflict !== null) expect(n.conflict, where).toBe(node.conflict);
        }
        // A new hold takes the token with it.
        if (n.conflict && n.conflict !== node.conflict) expect(out.revokeToken, where).toBe(true);
        // Only the operator (or auto-assign at discovery) opens a window.
        if (n.windowUntil === END) expect(['discovered', 'role-set', 'state-requested', 'machine-confirmed'], where).toContain(event.type);
        // The machine's own reports never give it a role or take one away.
        if (event.type === 'config-served' || event.type === 'install-reported' || event.type === 'address-conflict') expect(n.role, where).toBe(node.role);
        // Nothing but an explicit request or its Talos's report makes a machine installed.
        if (n.state === 'installed' && node.state !== 'installed') expect(['state-requested', 'install-reported'], where).toContain(event.type);
      }
    }
    expect(applied).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('is pure: the same input gives the same output and the input is not changed', () => {
    for (const node of nodes) {
      const copy = { ...node };
      for (const event of events) {
        expect(applyLifecycle(node, event, ctx)).toEqual(applyLifecycle(copy, event, ctx));
        expect(node).toEqual(copy);
      }
    }
  });
});

describe('node lifecycle: transitions', () => {
  const assigned: LifecycleFields = { role: 'worker', state: 'assigned', windowUntil: EARLIER, windowIp: '192.0.2.10', conflict: null };

  it('a role decides the state until the machine moves on', () => {
    const table: Array<[Role, BootState, BootState]> = [
      ['unassigned', 'installed', 'discovered'],
      ['worker', 'discovered', 'assigned'],
      ['worker', 'installing', 'installing'],
      ['controlplane', 'installed', 'installed'],
      ['controlplane', 'reinstall-requested', 'reinstall-requested'],
    ];
    for (const [role, from, to] of table) expect(stateForRole(role, from), `${role} ${from}`).toBe(to);
  });

  it('discovery: unassigned has no window; auto-assigned opens one bound to where it booted from', () => {
    expect(applyLifecycle(UNSEEN, { type: 'discovered', role: 'unassigned', ip: '192.0.2.20' }, ctx)).toEqual({ ok: true, next: UNSEEN, revokeToken: false });
    expect(applyLifecycle(UNSEEN, { type: 'discovered', role: 'controlplane', ip: '192.0.2.20' }, ctx)).toEqual({
      ok: true,
      next: { role: 'controlplane', state: 'assigned', windowUntil: END, windowIp: '192.0.2.20', conflict: null },
      revokeToken: false,
    });
  });

  it('assigning opens an unbound window; unassigning closes it, clears the hold and revokes the token', () => {
    const open = applyLifecycle(UNSEEN, { type: 'role-set', role: 'worker' }, ctx);
    expect(open).toEqual({ ok: true, next: { role: 'worker', state: 'assigned', windowUntil: END, windowIp: null, conflict: null }, revokeToken: false });
    const held = { ...assigned, conflict: 'two machines' };
    expect(applyLifecycle(held, { type: 'role-set', role: 'unassigned' }, ctx)).toEqual({ ok: true, next: UNSEEN, revokeToken: true });
  });

  it('changing the role of an assigned machine keeps its window and binding', () => {
    expect(applyLifecycle(assigned, { type: 'role-set', role: 'controlplane' }, ctx)).toEqual({ ok: true, next: { ...assigned, role: 'controlplane' }, revokeToken: false });
  });

  it('a machine without a role cannot be moved to any state but discovered, nor confirmed', () => {
    for (const to of BOOT_STATES) expect(applyLifecycle(UNSEEN, { type: 'state-requested', to }, ctx).ok, to).toBe(to === 'discovered');
    expect(applyLifecycle(UNSEEN, { type: 'machine-confirmed', ip: null }, ctx)).toEqual({ ok: false, reason: 'no-role' });
  });

  it('reinstall opens a new unbound window and dismisses the hold; marking installed closes it', () => {
    const held = { ...assigned, state: 'installed' as const, windowUntil: null, conflict: 'x' };
    expect(applyLifecycle(held, { type: 'state-requested', to: 'reinstall-requested' }, ctx)).toEqual({
      ok: true,
      next: { ...held, state: 'reinstall-requested', windowUntil: END, windowIp: null, conflict: null },
      revokeToken: false,
    });
    expect(applyLifecycle(assigned, { type: 'state-requested', to: 'installed' }, ctx)).toEqual({ ok: true, next: { ...assigned, state: 'installed', windowUntil: null }, revokeToken: true });
  });

  it('an installed machine is never held: installing it settles a conflict, and none is raised on it', () => {
    const held = { ...assigned, state: 'installing' as const, conflict: 'two machines claim this MAC' };
    for (const event of [{ type: 'state-requested', to: 'installed' }, { type: 'install-reported' }] as const) {
      expect(applyLifecycle(held, event, ctx), event.type).toEqual({ ok: true, next: { ...held, state: 'installed', windowUntil: null, conflict: null }, revokeToken: true });
    }
    const installed = { ...assigned, state: 'installed' as const, windowUntil: null };
    expect(applyLifecycle(installed, { type: 'address-conflict', addresses: ['192.0.2.10', '192.0.2.11'] }, ctx)).toEqual({ ok: true, next: installed, revokeToken: false });
    // Confirming settles a conflict an older release left, and opens no window (a reinstall does).
    expect(applyLifecycle({ ...installed, conflict: 'x' }, { type: 'machine-confirmed', ip: '192.0.2.11' }, ctx)).toEqual({ ok: true, next: installed, revokeToken: true });
  });

  it('a served config moves the machine to installing, once', () => {
    expect(applyLifecycle(assigned, { type: 'config-served' }, ctx)).toEqual({ ok: true, next: { ...assigned, state: 'installing' }, revokeToken: false });
    for (const state of ['installing', 'installed'] as const) {
      expect(applyLifecycle({ ...assigned, state }, { type: 'config-served' }, ctx)).toEqual({ ok: true, next: { ...assigned, state }, revokeToken: false });
    }
  });

  it("Talos's report of an install counts only for a machine that is installing", () => {
    const installing = { ...assigned, state: 'installing' as const };
    expect(applyLifecycle(installing, { type: 'install-reported' }, ctx)).toEqual({ ok: true, next: { ...installing, state: 'installed', windowUntil: null }, revokeToken: true });
    // A reinstall waiting for its PXE boot is not undone by the old system's events.
    for (const state of ['assigned', 'reinstall-requested', 'installed'] as const) {
      expect(applyLifecycle({ ...assigned, state }, { type: 'install-reported' }, ctx), state).toEqual({ ok: true, next: { ...assigned, state }, revokeToken: false });
    }
  });

  it('a conflict holds the machine and revokes its token; confirming opens a window bound to the chosen address', () => {
    const held = applyLifecycle(assigned, { type: 'address-conflict', addresses: ['192.0.2.10', '192.0.2.11'] }, ctx);
    expect(held).toMatchObject({ ok: true, revokeToken: true, next: { conflict: expect.stringContaining('192.0.2.10 and 192.0.2.11') } });
    const next = held.ok ? held.next : assigned;
    expect(applyLifecycle(next, { type: 'machine-confirmed', ip: '192.0.2.11' }, ctx)).toEqual({
      ok: true,
      next: { ...assigned, windowUntil: END, windowIp: '192.0.2.11', conflict: null },
      revokeToken: true,
    });
  });
});

describe('holds the operator lifts (holdLifted)', () => {
  // Between EARLIER and END: a window until EARLIER is closed, one until END is open.
  const NOW = new Date('2026-12-02T13:00:00.000Z');
  const OWN = 'waiting for the Talos v1.14.0 amd64 kernel and initramfs (genesis assets fetch --talos v1.14.0 --arch amd64)';
  const CONFLICT = 'two machines claim this MAC inside its install window: 192.0.2.10 and 192.0.2.11';
  const held = { role: 'worker', state: 'assigned', windowUntil: END, windowIp: '192.0.2.10', conflict: CONFLICT, waiting: conflictHoldText(CONFLICT) } as const;
  const closed = { role: 'worker', state: 'assigned', windowUntil: EARLIER, windowIp: '192.0.2.10', conflict: null, waiting: WINDOW_CLOSED_HOLD } as const;
  const lifted = (before: LifecycleFields & { waiting: string | null }, event: LifecycleEvent) => {
    const outcome = applyLifecycle(before, event, ctx);
    if (!outcome.ok) throw new Error(`refused: ${outcome.reason}`);
    return holdLifted(before, outcome.next, NOW);
  };

  it("a conflict's hold goes when the conflict does: confirm, reinstall, unassign", () => {
    expect(lifted(held, { type: 'machine-confirmed', ip: '192.0.2.10' })).toBe(true);
    expect(lifted(held, { type: 'machine-confirmed', ip: null })).toBe(true);
    expect(lifted(held, { type: 'state-requested', to: 'reinstall-requested' })).toBe(true);
    expect(lifted(held, { type: 'role-set', role: 'unassigned' })).toBe(true);
    // The conflict stays, and so does its hold.
    expect(lifted(held, { type: 'role-set', role: 'controlplane' })).toBe(false);
    expect(lifted(held, { type: 'config-served' })).toBe(false);
  });

  it("a closed window's hold goes when a window opens, not before", () => {
    expect(lifted(closed, { type: 'state-requested', to: 'reinstall-requested' })).toBe(true);
    expect(lifted(closed, { type: 'machine-confirmed', ip: null })).toBe(true);
    expect(lifted(closed, { type: 'role-set', role: 'controlplane' })).toBe(false);
    expect(lifted(closed, { type: 'state-requested', to: 'assigned' })).toBe(false);
  });

  it('no role, or installed: never held, whatever the hold', () => {
    for (const before of [held, closed, { ...closed, waiting: OWN }]) {
      expect(lifted(before, { type: 'role-set', role: 'unassigned' }), before.waiting).toBe(true);
      expect(lifted(before, { type: 'state-requested', to: 'installed' }), before.waiting).toBe(true);
    }
  });

  it("a hold of the machine's own stays until it asks again; no hold, nothing to lift", () => {
    const own = { ...held, waiting: OWN };
    for (const event of [{ type: 'machine-confirmed', ip: null }, { type: 'state-requested', to: 'reinstall-requested' }, { type: 'role-set', role: 'controlplane' }] as const) {
      expect(lifted(own, event), event.type).toBe(false);
      expect(lifted({ ...held, waiting: null }, event), event.type).toBe(false);
    }
  });
});
