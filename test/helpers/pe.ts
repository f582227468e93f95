// A minimal PE/COFF image header, enough for inspectEfiBinary: MZ, e_lfanew, PE signature,
// machine, a PE32+ optional header with its subsystem. Not runnable; for the checks only.
export function fakePe(machine: number, subsystem = 10, size = 4096): Buffer {
  const b = Buffer.alloc(size);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(machine, 0x84);
  b.writeUInt16LE(0x20b, 0x98); // PE32+
  b.writeUInt16LE(subsystem, 0x98 + 68);
  return b;
}
