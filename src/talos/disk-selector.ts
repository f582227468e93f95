// The v1alpha1 install disk selector (`machine.install.diskSelector`: size, model, serial, type, ...)
// as the CEL expression Talos evaluates for it. Talos itself turns the selector into CEL since 1.11
// (`InstallConfig.DiskMatchExpression`), so Genesis writes that same expression into Talos 1.14's
// UnattendedInstallConfig, and refuses what Talos would refuse (a `name` selector, an unknown type,
// a size it cannot parse). Pure.

export class DiskSelectorError extends Error {}

/** go-humanize's ParseBytes units, as Talos parses `size` with it. */
const UNITS: Record<string, number> = {
  b: 1,
  '': 1,
  kib: 1024,
  kb: 1e3,
  mib: 1024 ** 2,
  mb: 1e6,
  gib: 1024 ** 3,
  gb: 1e9,
  tib: 1024 ** 4,
  tb: 1e12,
  pib: 1024 ** 5,
  pb: 1e15,
  eib: 1024 ** 6,
  eb: 1e18,
  ki: 1024,
  k: 1e3,
  mi: 1024 ** 2,
  m: 1e6,
  gi: 1024 ** 3,
  g: 1e9,
  ti: 1024 ** 4,
  t: 1e12,
  pi: 1024 ** 5,
  p: 1e15,
  ei: 1024 ** 6,
  e: 1e18,
};

/** `>= 100GB` → { op: '>=', bytes: 100000000000n }, as Talos's InstallDiskSizeMatcher reads it. */
export function parseSizeCondition(condition: string): { op: string; bytes: bigint } {
  const m = /^(>=|<=|>|<|==)?(.*)$/.exec(condition.trim())!;
  const op = m[1] || '==';
  const text = m[2]!.trim();
  const digits = /^[0-9.]*/.exec(text)![0];
  const value = Number(digits);
  const unit = UNITS[text.slice(digits.length).trim().toLowerCase()];
  if (digits === '' || !Number.isFinite(value) || unit === undefined) {
    throw new DiskSelectorError(`size ${JSON.stringify(condition)}: expected [>=|<=|>|<|==]<size>[units], e.g. ">= 100GB"`);
  }
  const bytes = value * unit;
  if (bytes >= 2 ** 64) throw new DiskSelectorError(`size ${JSON.stringify(condition)} is too large`);
  return { op, bytes: BigInt(Math.trunc(bytes)) };
}

const str = (s: string) => JSON.stringify(s);
const glob = (pattern: string, field: string) => `glob(${str(pattern)}, disk.${field})`;

const TYPES: Record<string, string> = { nvme: 'disk.transport == "nvme"', sd: 'disk.transport == "mmc"', hdd: 'disk.rotational', ssd: '!disk.rotational' };

/** The CEL expression, term for term in Talos's order; throws DiskSelectorError for what Talos refuses. */
export function diskSelectorToCel(selector: Record<string, unknown>): string {
  const terms: string[] = [];
  const s = (k: string): string | undefined => {
    const v = selector[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new DiskSelectorError(`diskSelector.${k} must be a string`);
    return v;
  };
  const size = s('size');
  if (size !== undefined) {
    const { op, bytes } = parseSizeCondition(size);
    terms.push(`disk.size ${op} ${bytes}u`);
  }
  for (const [key, field] of [
    ['uuid', 'uuid'],
    ['wwid', 'wwid'],
    ['model', 'model'],
  ] as const) {
    const v = s(key);
    if (v !== undefined) terms.push(glob(v, field));
  }
  if (s('name') !== undefined) throw new DiskSelectorError('diskSelector.name: Talos does not support selecting the install disk by name (use size, model, serial, wwid, type or busPath)');
  for (const [key, field] of [
    ['serial', 'serial'],
    ['modalias', 'modalias'],
  ] as const) {
    const v = s(key);
    if (v !== undefined) terms.push(glob(v, field));
  }
  // Talos: "otherwise it might select e.g. DM devices".
  terms.push('disk.transport != ""');
  const type = s('type');
  if (type !== undefined) {
    const t = TYPES[type];
    if (!t) throw new DiskSelectorError(`diskSelector.type ${str(type)}: Talos knows nvme, sd, hdd and ssd`);
    terms.push(t);
  }
  const busPath = s('busPath');
  if (busPath !== undefined) terms.push(glob(busPath, 'bus_path'));
  terms.push('!disk.readonly', '!disk.cdrom');
  return terms.join(' && ');
}
