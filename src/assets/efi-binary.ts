// Which machine an EFI binary is for, read from its PE/COFF headers, so an iPXE build for the
// wrong architecture (or a file that is not an EFI application) is refused before a machine
// downloads it. Pure: the first bytes in, a verdict out.

export type EfiVerdict = { ok: true; arch: 'amd64' | 'arm64' } | { ok: false; problem: string };

/** PE machine types (IMAGE_FILE_MACHINE_*) Talos runs on. */
const MACHINES: Record<number, 'amd64' | 'arm64'> = { 0x8664: 'amd64', 0xaa64: 'arm64' };
/** IMAGE_SUBSYSTEM_EFI_APPLICATION. */
const EFI_APPLICATION = 10;

/**
 * The architecture a PE/COFF image's header names (`MZ`, e_lfanew at 0x3c, `PE\0\0`, the machine),
 * if it is one Talos runs on; undefined for anything else. Also what tells an EFI zboot kernel's
 * architecture (talos-file.ts).
 */
export function peArch(head: Buffer): 'amd64' | 'arm64' | undefined {
  if (head.length < 0x40 || head.toString('latin1', 0, 2) !== 'MZ') return undefined;
  const pe = head.readUInt32LE(0x3c);
  if (pe < 0x40 || pe + 6 > head.length || head.toString('latin1', pe, pe + 4) !== 'PE\0\0') return undefined;
  return MACHINES[head.readUInt16LE(pe + 4)];
}

/** `head`: at least the first 4 KiB of the file (the headers live there). */
export function inspectEfiBinary(head: Buffer): EfiVerdict {
  if (head.length < 0x40 || head.toString('latin1', 0, 2) !== 'MZ') return { ok: false, problem: 'not a PE/COFF file (no MZ header)' };
  const pe = head.readUInt32LE(0x3c);
  if (pe + 24 + 70 > head.length || head.toString('latin1', pe, pe + 4) !== 'PE\0\0') return { ok: false, problem: 'not a PE/COFF file (no PE signature)' };
  const machine = head.readUInt16LE(pe + 4);
  const optional = pe + 24;
  const magic = head.readUInt16LE(optional);
  if (magic !== 0x20b && magic !== 0x10b) return { ok: false, problem: `unknown optional header magic 0x${magic.toString(16)}` };
  const subsystem = head.readUInt16LE(optional + 68);
  if (subsystem !== EFI_APPLICATION) return { ok: false, problem: `PE subsystem ${subsystem} is not an EFI application (10)` };
  const arch = MACHINES[machine];
  if (!arch) return { ok: false, problem: `PE machine 0x${machine.toString(16)} is neither x86-64 nor arm64` };
  return { ok: true, arch };
}
