// What a kernel or initramfs an operator brings (genesis assets import) is, read from its first
// bytes, so a file for the other architecture, the two files the other way round, or an error
// page saved in place of a download is refused with what it is, before a machine downloads it and
// stops at an "exec format error" on a console nobody watches. Pure: the first bytes in, a
// verdict out.
//
// What Talos ships: an x86-64 kernel is a bzImage (the boot protocol's "HdrS" at 0x202); an arm64
// one an EFI zboot image since Talos 1.8 ("MZ", then "zimg"; a PE header for arm64) and a plain
// Image before it ("ARM\x64" at 0x38). Its initramfs.xz is zstd since 1.8, xz before, possibly
// after an uncompressed cpio part; the kernel accepts the other compressions below too.

import type { Arch } from '../domain/node.ts';
import { peArch } from './efi-binary.ts';

export type TalosFileVerdict = { ok: true; format: string } | { ok: false; problem: string };

/** How much of the file the checks read. */
export const TALOS_FILE_HEAD_BYTES = 4096;

const IMAGE_ARM64_MAGIC = 'ARM\x64';

/** Compressions (and the plain cpio) the Linux kernel unpacks an initramfs from, by their magic. */
const INITRAMFS_MAGICS: Array<{ bytes: number[]; format: string }> = [
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], format: 'zstd' },
  { bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], format: 'xz' },
  { bytes: [0x1f, 0x8b], format: 'gzip' },
  { bytes: [0x02, 0x21, 0x4c, 0x18], format: 'lz4' },
  { bytes: [0x42, 0x5a, 0x68], format: 'bzip2' },
  { bytes: [0x5d, 0x00, 0x00], format: 'lzma' },
  { bytes: [0x89, 0x4c, 0x5a, 0x4f], format: 'lzo' },
  { bytes: [...Buffer.from('0707')], format: 'cpio' },
];

/** A Linux kernel's architecture and format, if `head` is one Talos boots. */
function kernelOf(head: Buffer): { arch: Arch; format: string } | undefined {
  if (head.length >= 0x206 && head.toString('latin1', 0x202, 0x206) === 'HdrS') return { arch: 'amd64', format: 'bzImage' };
  if (head.length >= 0x3c && head.toString('latin1', 0x38, 0x3c) === IMAGE_ARM64_MAGIC) return { arch: 'arm64', format: 'Image' };
  if (head.length >= 8 && head.toString('latin1', 0, 2) === 'MZ' && head.toString('latin1', 4, 8) === 'zimg') {
    // EFI zboot: its PE header names the machine (riscv64 and loongarch64 use the format too).
    const arch = peArch(head);
    return arch ? { arch, format: 'EFI zboot' } : undefined;
  }
  return undefined;
}

function initramfsOf(head: Buffer): string | undefined {
  return INITRAMFS_MAGICS.find((m) => head.length >= m.bytes.length && m.bytes.every((b, i) => head[i] === b))?.format;
}

/** A page or message saved where the file should be: what a failed download leaves. */
function textOf(head: Buffer): string | undefined {
  const start = head.toString('latin1', 0, 512).trimStart().toLowerCase();
  if (start.startsWith('<!doctype html') || start.startsWith('<html') || start.startsWith('<?xml')) return 'an HTML or XML page (a download that saved an error page?)';
  const sample = head.subarray(0, 512);
  if (sample.length > 0 && sample.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) return 'a text file';
  return undefined;
}

const hex = (head: Buffer) => [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');

/** `head`: the first TALOS_FILE_HEAD_BYTES of the file (all of it, if shorter). */
export function inspectKernel(head: Buffer, arch: Arch): TalosFileVerdict {
  const kernel = kernelOf(head);
  if (kernel?.arch === arch) return { ok: true, format: kernel.format };
  if (kernel) return { ok: false, problem: `it is an ${kernel.arch} kernel (${kernel.format}), not an ${arch} one: import it with --arch ${kernel.arch}` };
  const initramfs = initramfsOf(head);
  if (initramfs) return { ok: false, problem: `it is an initramfs (${initramfs}), not a kernel: are the kernel and the initramfs the other way round?` };
  const text = textOf(head);
  if (text) return { ok: false, problem: `it is ${text}, not a kernel` };
  const expected = arch === 'amd64' ? 'no bzImage header ("HdrS" at 0x202)' : 'neither an arm64 Image ("ARM\\x64" at 0x38) nor an EFI zboot image';
  return { ok: false, problem: `it is not a Linux kernel for ${arch}: ${expected}; it begins ${hex(head)}` };
}

/** `head`: the first TALOS_FILE_HEAD_BYTES of the file (all of it, if shorter). */
export function inspectInitramfs(head: Buffer): TalosFileVerdict {
  const format = initramfsOf(head);
  if (format) return { ok: true, format };
  const kernel = kernelOf(head);
  if (kernel) return { ok: false, problem: `it is an ${kernel.arch} kernel (${kernel.format}), not an initramfs: are the kernel and the initramfs the other way round?` };
  const text = textOf(head);
  if (text) return { ok: false, problem: `it is ${text}, not an initramfs` };
  return { ok: false, problem: `it is not an initramfs: no cpio archive and no compression the kernel unpacks (zstd, xz, gzip, lz4, bzip2, lzma, lzo); it begins ${hex(head)}` };
}
