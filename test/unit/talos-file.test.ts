import { describe, expect, it } from 'vitest';
import { inspectInitramfs, inspectKernel } from '../../src/assets/talos-file.ts';
import { fakeInitramfs, fakeKernel } from '../helpers/boot-files.ts';

const head = (b: Buffer) => b.subarray(0, 4096);

describe('what a brought kernel or initramfs is (genesis assets import)', () => {
  it('accepts the kernels Talos ships for each architecture, by their format', () => {
    expect(inspectKernel(head(fakeKernel('amd64', 8192, 'bzImage')), 'amd64')).toEqual({ ok: true, format: 'bzImage' });
    expect(inspectKernel(head(fakeKernel('arm64', 8192, 'zboot')), 'arm64')).toEqual({ ok: true, format: 'EFI zboot' });
    expect(inspectKernel(head(fakeKernel('arm64', 8192, 'Image')), 'arm64')).toEqual({ ok: true, format: 'Image' });
  });

  it('names the architecture of a kernel for the other one', () => {
    expect(inspectKernel(head(fakeKernel('arm64', 8192, 'Image')), 'amd64')).toEqual({ ok: false, problem: 'it is an arm64 kernel (Image), not an amd64 one: import it with --arch arm64' });
    expect(inspectKernel(head(fakeKernel('amd64', 8192)), 'arm64')).toEqual({ ok: false, problem: 'it is an amd64 kernel (bzImage), not an arm64 one: import it with --arch amd64' });
    // A zboot image is arm64 only when its PE header says so (riscv64 and loongarch64 use the format too).
    const riscv = fakeKernel('arm64', 8192, 'zboot');
    riscv.writeUInt16LE(0x5064, 0x44);
    expect(inspectKernel(head(riscv), 'arm64')).toMatchObject({ ok: false, problem: expect.stringMatching(/^it is not a Linux kernel for arm64: neither an arm64 Image/) });
  });

  it('accepts each compression the kernel unpacks an initramfs from, and a plain cpio', () => {
    const starts: Array<[number[], string]> = [
      [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
      [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
      [[0x1f, 0x8b, 0x08], 'gzip'],
      [[0x02, 0x21, 0x4c, 0x18], 'lz4'],
      [[0x42, 0x5a, 0x68, 0x39], 'bzip2'],
      [[0x5d, 0x00, 0x00, 0x80], 'lzma'],
      [[0x89, 0x4c, 0x5a, 0x4f], 'lzo'],
      [[...Buffer.from('070701')], 'cpio'],
    ];
    for (const [bytes, format] of starts) expect(inspectInitramfs(Buffer.concat([Buffer.from(bytes), Buffer.alloc(100, 0xee)]))).toEqual({ ok: true, format });
  });

  it('tells the two files the other way round, an error page and a file that is neither', () => {
    expect(inspectKernel(head(fakeInitramfs(8192)), 'amd64')).toEqual({ ok: false, problem: 'it is an initramfs (zstd), not a kernel: are the kernel and the initramfs the other way round?' });
    expect(inspectInitramfs(head(fakeKernel('amd64', 8192)))).toEqual({ ok: false, problem: 'it is an amd64 kernel (bzImage), not an initramfs: are the kernel and the initramfs the other way round?' });
    const page = Buffer.from('\n<!DOCTYPE html><html><body>Not Found</body></html>');
    expect(inspectKernel(page, 'amd64')).toEqual({ ok: false, problem: 'it is an HTML or XML page (a download that saved an error page?), not a kernel' });
    expect(inspectInitramfs(Buffer.from('Not Found\n'))).toEqual({ ok: false, problem: 'it is a text file, not an initramfs' });
    const noise = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5]);
    expect(inspectKernel(noise, 'amd64')).toEqual({ ok: false, problem: 'it is not a Linux kernel for amd64: no bzImage header ("HdrS" at 0x202); it begins de ad be ef 00 01 02 03' });
    expect(inspectInitramfs(noise)).toMatchObject({ ok: false, problem: expect.stringMatching(/^it is not an initramfs: no cpio archive .*; it begins de ad be ef/) });
    expect(inspectKernel(Buffer.alloc(0), 'arm64')).toMatchObject({ ok: false });
    expect(inspectInitramfs(Buffer.alloc(0))).toMatchObject({ ok: false });
  });
});
