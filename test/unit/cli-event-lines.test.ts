import { describe, expect, it } from 'vitest';
import { eventLines } from '../../src/cli/nodes.ts';

describe('genesis nodes show: the events', () => {
  it('line up in columns as wide as the longest type and actor shown', () => {
    const lines = eventLines([
      { at: '2026-12-06T17:32:59.764Z', type: 'state-changed', actor: 'api:cli', detail: { to: 'installed' } },
      { at: '2026-12-06T17:32:59.764Z', type: 'conflict-resolved', actor: 'api:dashboard', detail: { by: 'state-requested' } },
      { at: '2026-12-06T17:32:59.201Z', type: 'conflict', actor: 'boot', detail: {} },
    ]);
    expect(lines).toEqual([
      '  2026-12-06T17:32:59.764Z  state-changed     api:cli       {"to":"installed"}',
      '  2026-12-06T17:32:59.764Z  conflict-resolved api:dashboard {"by":"state-requested"}',
      '  2026-12-06T17:32:59.201Z  conflict          boot          {}',
    ]);
  });
});
