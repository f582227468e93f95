// Kernel and initramfs stand-ins carrying only the headers talos-file.ts reads (the boot
// protocol's, the image's, the compression's magic); the rest random. Not bootable; for the
// import checks and the download paths only. The stand-ins that boot are in standin.ts.

import { randomBytes } from 'node:crypto';
import type { Arch } from '../../src/domain/node.ts';

export type KernelFormat = 'bzImage' | 'Image' | 'zboot';

export function fakeKernel(arch: Arch, size: number, format: KernelFormat = arch === 'amd64' ? 'bzImage' : 'zboot'): Buffer {
  const b = randomBytes(size);
  if (format === 'bzImage') {
    b.write('MZ', 0, 'latin1');
    b.writeUInt16LE(0xaa55, 0x1fe);
    b.write('HdrS', 0x202, 'latin1');
  } else if (format === 'Image') {
    b.write('MZ', 0, 'latin1');
    b.write('ARM\x64', 0x38, 'latin1');
    b.fill(0, 0x202, 0x206);
  } else {
    // EFI zboot (linux/drivers/firmware/efi/libstub/zboot-header.S): MZ, "zimg", PE at e_lfanew.
    b.write('MZ', 0, 'latin1');
    b.write('zimg', 4, 'latin1');
    b.write('zstd', 0x18, 'latin1');
    b.writeUInt32LE(0x40, 0x3c);
    b.write('PE\0\0', 0x40, 'latin1');
    b.writeUInt16LE(arch === 'arm64' ? 0xaa64 : 0x8664, 0x44);
    b.fill(0, 0x38, 0x3c);
    b.fill(0, 0x202, 0x206);
  }
  return b;
}

/** zstd, as Talos 1.8 and later compress it. */
export function fakeInitramfs(size: number): Buffer {
  const b = randomBytes(size);
  Buffer.from([0x28, 0xb5, 0x2f, 0xfd]).copy(b, 0);
  return b;
}
