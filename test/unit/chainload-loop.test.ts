// The iPXE chain-load loop is recognised from TFTP downloads alone, once, with the fix named.

import { describe, expect, it } from 'vitest';
import { ChainloadLoopDetector } from '../../src/provision/chainload-loop.ts';

describe('chain-load loop detector', () => {
  it('warns on the third iPXE download from one address within the window, then stays quiet', () => {
    const d = new ChainloadLoopDetector({ threshold: 3, windowMs: 120_000, quietMs: 600_000 });
    expect(d.observe('192.0.2.50', 'undionly.kpxe', 0)).toBeUndefined();
    expect(d.observe('192.0.2.50', 'undionly.kpxe', 10_000)).toBeUndefined();
    expect(d.observe('192.0.2.50', 'undionly.kpxe', 20_000)).toMatch(/^192\.0\.2\.50 fetched undionly\.kpxe 3 times in 120 s: it is loading iPXE again and again.*dhcp\.proxy: true/);
    expect(d.observe('192.0.2.50', 'undionly.kpxe', 30_000)).toBeUndefined();
    expect(d.observe('192.0.2.50', 'undionly.kpxe', 620_000 + 1)).toBeUndefined(); // the window emptied meanwhile
  });

  it('ignores slow reboots, other addresses and other files', () => {
    const d = new ChainloadLoopDetector({ threshold: 3, windowMs: 120_000 });
    for (const t of [0, 130_000, 260_000, 390_000]) expect(d.observe('192.0.2.51', 'snponly.efi', t)).toBeUndefined();
    expect(d.observe('192.0.2.52', 'snponly.efi', 0)).toBeUndefined();
    expect(d.observe('192.0.2.53', 'snponly.efi', 1)).toBeUndefined();
    for (const t of [0, 1, 2, 3]) expect(d.observe('192.0.2.54', 'boot.ipxe', t)).toBeUndefined();
  });
});
