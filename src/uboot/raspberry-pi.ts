// Raspberry Pi 4 network boot from its EEPROM bootloader. The bootloader asks for its firmware
// over TFTP below a per-board prefix: by default the board's serial number, 8 hex digits
// (TFTP_PREFIX=0), or its MAC with dashes (TFTP_PREFIX=2): `1234abcd/start4.elf`,
// `1234abcd/config.txt`, `1234abcd/fixup4.dat`, then what config.txt names (`kernel=`, the
// device tree, overlays/). Every Pi gets the same files, so Genesis serves them all from one
// directory, <assets_dir>/rpi (Debian's raspi-firmware package has them, plus U-Boot's
// rpi_arm64 build as u-boot.bin); the config.txt written here starts U-Boot, which then takes
// the U-Boot path (boot.scr.uimg). Pure: names in, meanings out.
//
// Written from the Raspberry Pi documentation (bootloader configuration, network boot); no Pi
// can be emulated here, so it is tested with request sequences, not with a board.

export type PiRequest = { kind: 'rpi'; board: string; file: string };

/** `name` is already normalised by the TFTP layer (no leading '/', no '..', no empty segment). */
export function classifyPiRequest(name: string): PiRequest | undefined {
  const m = /^([0-9a-f]{8}|[0-9a-f]{2}(?:-[0-9a-f]{2}){5})\/(.+)$/.exec(name);
  if (!m) return undefined;
  return { kind: 'rpi', board: m[1]!, file: m[2]! };
}

/** Served when <assets_dir>/rpi/config.txt is not there: 64-bit, serial console, U-Boot. */
export const DEFAULT_PI_CONFIG = [
  '# Written by Genesis: Raspberry Pi 4 network boot into U-Boot, which then fetches boot.scr.uimg.',
  '# Put your own config.txt in <assets_dir>/rpi/ to replace this one.',
  '[pi4]',
  'arm_64bit=1',
  'enable_uart=1',
  'kernel=u-boot.bin',
  '',
].join('\n');
