import { describe, expect, it } from 'vitest';
import { normalizeTftpPath } from '../../src/tftp/provider.ts';

describe('normalizeTftpPath', () => {
  it('accepts plain relative paths and tolerates a leading slash', () => {
    expect(normalizeTftpPath('undionly.kpxe')).toEqual({ ok: true, path: 'undionly.kpxe' });
    expect(normalizeTftpPath('/undionly.kpxe')).toEqual({ ok: true, path: 'undionly.kpxe' });
    expect(normalizeTftpPath('//arm64/snponly.efi')).toEqual({ ok: true, path: 'arm64/snponly.efi' });
  });

  it('refuses traversal, backslashes, control characters and empty segments', () => {
    for (const bad of ['', '/', '..', '../etc/passwd', 'a/../../b', 'a/./b', 'a//b', '..\\..\\boot.ini', 'C:\\x', 'a\x00b', 'a\nb', 'dir/']) {
      expect(normalizeTftpPath(bad).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});
