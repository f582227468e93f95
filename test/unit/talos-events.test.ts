// The pure side of the event sink and kernel-log receiver: decoding Talos's event messages, the
// rules for what an event means for a node, and reading Talos's JSON-lines kernel log.

import { describe, expect, it } from 'vitest';
import { decodeTalosEvent, EventDecodeError, eventEffect, eventSummary, type TalosEvent } from '../../src/talos-events/talos-event.ts';
import { peerAddress, sourceAddress } from '../../src/net/address.ts';
import { LineSplitter, parseKernelLogLine } from '../../src/kernel-log/kmsg.ts';
import { talosAny } from '../helpers/talos-reporter.ts';

const decode = (type: string, fields: Record<string, unknown>): TalosEvent => {
  const any = talosAny(type, fields);
  return decodeTalosEvent(any.type_url, any.value);
};

describe('decoding Talos events', () => {
  it('reads each message Genesis uses, enums as lower-case names', () => {
    expect(decode('SequenceEvent', { sequence: 'install', action: 'STOP', error: { code: 1, message: 'disk not found' } })).toEqual({
      kind: 'sequence',
      sequence: 'install',
      action: 'stop',
      error: 'disk not found',
    });
    expect(decode('PhaseEvent', { phase: 'install', action: 'STOP' })).toEqual({ kind: 'phase', phase: 'install', action: 'stop' });
    expect(decode('TaskEvent', { task: 'mountState' })).toEqual({ kind: 'task', task: 'mountState', action: 'start' });
    expect(decode('ServiceStateEvent', { service: 'etcd', action: 'FAILED', message: 'exit 1', health: { unknown: true } })).toEqual({
      kind: 'service',
      service: 'etcd',
      action: 'failed',
      message: 'exit 1',
    });
    expect(decode('ConfigValidationErrorEvent', { error: 'unknown field' })).toEqual({ kind: 'config-validation-error', error: 'unknown field' });
    expect(decode('AddressEvent', { hostname: 'w-1', addresses: ['192.0.2.21', 'fd00::21'] })).toEqual({ kind: 'addresses', hostname: 'w-1', addresses: ['192.0.2.21', 'fd00::21'] });
    expect(decode('MachineStatusEvent', { stage: 'RUNNING', status: { ready: false, unmetConditions: [{ name: 'nodeReady', reason: 'waiting' }] } })).toEqual({
      kind: 'machine-status',
      stage: 'running',
      ready: false,
      unmet: [{ name: 'nodeReady', reason: 'waiting' }],
    });
  });

  it('keeps types it does not read by name, bounds what it stores, and refuses bytes that are not the message', () => {
    expect(decodeTalosEvent('type.googleapis.com/machine.RestartEvent', Buffer.alloc(0))).toEqual({ kind: 'other', type: 'machine.RestartEvent' });
    expect(decodeTalosEvent('type.googleapis.com/evil.Thing\n', Buffer.alloc(0))).toMatchObject({ kind: 'other' });
    const long = decode('ConfigLoadErrorEvent', { error: 'x'.repeat(5000) });
    expect(long.kind === 'config-load-error' && long.error.length).toBe(2001);
    expect(() => decodeTalosEvent('type.googleapis.com/machine.SequenceEvent', Buffer.from([0x10]))).toThrow(EventDecodeError);
  });
});

describe('what an event means for a node', () => {
  const installing = { state: 'installing' };
  it('the boot sequence starting, or the running stage, marks an installing node installed', () => {
    expect(eventEffect({ kind: 'sequence', sequence: 'boot', action: 'start' }, installing).installed).toMatch(/boot sequence/);
    expect(eventEffect({ kind: 'machine-status', stage: 'running', ready: false, unmet: [] }, installing)).toMatchObject({ stage: 'running', installed: expect.any(String) });
  });
  it('nothing else does: booting, installing and rebooting happen around failed installs too', () => {
    for (const stage of ['booting', 'installing', 'rebooting', 'maintenance'] as const) {
      expect(eventEffect({ kind: 'machine-status', stage, ready: false, unmet: [] }, installing).installed).toBeUndefined();
    }
    expect(eventEffect({ kind: 'sequence', sequence: 'install', action: 'stop' }, installing).installed).toBeUndefined();
    expect(eventEffect({ kind: 'sequence', sequence: 'boot', action: 'stop' }, installing).installed).toBeUndefined();
  });
  it('only an installing node moves: a reinstall request or an unassigned node stays as it is', () => {
    for (const state of ['reinstall-requested', 'assigned', 'discovered', 'installed']) {
      expect(eventEffect({ kind: 'sequence', sequence: 'boot', action: 'start' }, { state }).installed).toBeUndefined();
    }
  });
  it('failures are problems an operator must see', () => {
    expect(eventEffect({ kind: 'sequence', sequence: 'install', action: 'stop', error: 'no disk' }, installing)).toEqual({ problem: 'Talos sequence install failed: no disk' });
    expect(eventEffect({ kind: 'config-load-error', error: 'bad yaml' }, installing).problem).toMatch(/could not load/);
    expect(eventEffect({ kind: 'service', service: 'etcd', action: 'failed', message: 'boom' }, installing).problem).toBe('Talos service etcd failed: boom');
  });
  it('summaries name the step', () => {
    expect(eventSummary({ kind: 'machine-status', stage: 'running', ready: true, unmet: [] })).toBe('stage running (ready)');
    expect(eventSummary({ kind: 'sequence', sequence: 'install', action: 'stop', error: 'x' })).toBe('sequence install stop (failed)');
  });
});

describe('addresses', () => {
  it('grpc peers and socket addresses become the inventory\'s IPv4 text', () => {
    expect(peerAddress('ipv4:192.0.2.21:50123')).toBe('192.0.2.21');
    expect(peerAddress('192.0.2.21:50123')).toBe('192.0.2.21');
    expect(peerAddress('[::ffff:192.0.2.21]:50123')).toBe('192.0.2.21');
    expect(peerAddress('[fd00::21]:50123')).toBe('fd00::21');
    expect(sourceAddress('192.0.2.21/24')).toBe('192.0.2.21');
    expect(sourceAddress('::ffff:192.0.2.21')).toBe('192.0.2.21');
  });
});

describe('kernel log lines', () => {
  it('splits a stream into lines across chunks, skipping over-long lines up to their newline', () => {
    const s = new LineSplitter(10);
    expect(s.push(Buffer.from('ab'))).toEqual({ lines: [], tooLong: 0 });
    expect(s.push(Buffer.from('c\r\nde\n\nfg'))).toEqual({ lines: ['abc', 'de'], tooLong: 0 });
    expect(s.push(Buffer.from('0123456789012'))).toEqual({ lines: [], tooLong: 1 });
    expect(s.push(Buffer.from('345\nok\n'))).toEqual({ lines: ['ok'], tooLong: 0 });
  });
  it('reads Talos\'s JSON-lines fields and keeps the rest', () => {
    expect(parseKernelLogLine('{"msg":"hello","talos-time":"2026-11-23T10:00:00Z","talos-level":"info","facility":"kern","seq":3,"clock":12}')).toEqual({
      msg: 'hello',
      talosTime: '2026-11-23T10:00:00Z',
      level: 'info',
      facility: 'kern',
      fields: { seq: 3, clock: 12 },
    });
    for (const bad of ['not json', '[1]', '{"msg": 3}', 'null']) expect(parseKernelLogLine(bad)).toBeNull();
  });
});
