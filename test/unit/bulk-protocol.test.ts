import { describe, expect, it } from 'vitest';
import { CROWDED_READ_BYTES, readBytesFor, ROOMY_DOWNLOADS, SEND_READ_BYTES } from '../../src/bulk/protocol.ts';

describe('the bulk sender buffer per download', () => {
  it('is 256 KiB for the first 256 downloads held at once, 64 KiB for any more', () => {
    expect(readBytesFor(0)).toBe(256 * 1024);
    expect(readBytesFor(ROOMY_DOWNLOADS - 1)).toBe(SEND_READ_BYTES);
    expect(readBytesFor(ROOMY_DOWNLOADS)).toBe(64 * 1024);
    expect(readBytesFor(5000)).toBe(CROWDED_READ_BYTES);
  });

  it('keeps the sender under 112 MB of buffers at its default cap of 1024 downloads', () => {
    let total = 0;
    for (let active = 0; active < 1024; active++) total += readBytesFor(active);
    expect(total).toBe(256 * 256 * 1024 + 768 * 64 * 1024);
    expect(total / 1024 / 1024).toBe(112);
  });
});
