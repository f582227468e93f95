// `genesis assets`: download Talos kernels and initramfs, import them for air-gapped setups, and
// list what is present. Works on the assets directory directly (no running Genesis needed).

import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ASSET_FILES, importNames, sourceFor, type AssetSource } from '../assets/catalog.ts';
import { AssetError, fetchTalosAssets, importTalosAssets, readSums, type Progress } from '../assets/fetch.ts';
import { installGrubNetboot, installIpxeBinary } from '../assets/ipxe-binary.ts';
import { loadConfig, splitList, type Config } from '../config/config.ts';
import { isValidTalosVersion, type Arch } from '../domain/node.ts';
import { parseCommand, unknownCommand } from './args.ts';
import { formatted, OUTPUT_HELP, OUTPUT_OPTIONS, outputFormatOf } from './output.ts';
import { readInventory } from './inventory-read.ts';
import { CliError, cliFailure, UsageError } from './api-client.ts';

export const ASSETS_USAGE = `Usage: genesis assets <command> [options]

Commands:
  fetch [--talos vX.Y.Z] [--arch amd64,arm64] [--schematic <id>]
        Download the Talos kernel and initramfs into assets/talos/<version>/<arch>/, verified
        (published sha256, or recorded on the first fetch from the Image Factory), resumable
  import --talos vX.Y.Z --arch amd64 <dir | kernel initramfs> [--force]
        Copy files you brought (air-gapped): vmlinuz-<arch>/kernel-<arch> and initramfs-<arch>.xz,
        each checked first: a kernel for --arch, an initramfs (--force: copy them unchecked)
  list [-o table|json|yaml]
        What is present: versions, sizes, sha256, and which nodes use each version
  ipxe [<file | url>] [--sha256 <hex>]
        Put an iPXE EFI binary (snponly.efi) where the proxyDHCP hands it out: arm64 builds to
        assets/ipxe/arm64-efi/, x86-64 ones to assets/ipxe/ (checked from its PE header).
        Without an argument: assets.ipxe_arm64_url, pinned by assets.ipxe_arm64_sha256
  grub <file | url> [--sha256 <hex>]
        Put Debian's arm64 network GRUB (grubnetaa64.efi.signed, package grub-efi-arm64-signed)
        in assets/grub/: arm64 UEFI machines boot Talos through it when there is no arm64 iPXE

Options:
  --config <file>  Configuration file (assets_dir, talos.version, assets.*)
${OUTPUT_HELP}
`;

function arches(v: string | undefined, config: Config): Arch[] {
  const list = splitList(v ?? config.assets.arches);
  for (const a of list) if (a !== 'amd64' && a !== 'arm64') throw new UsageError(`--arch ${a}: amd64 or arm64`);
  return list as Arch[];
}

function version(v: string | undefined, config: Config): string {
  const ver = v ?? config.talos.version;
  if (!isValidTalosVersion(ver)) throw new UsageError(`--talos ${ver}: a Talos release tag such as v1.14.0`);
  return ver;
}

/** A progress bar on a terminal; plain lines every 10% otherwise (logs, CI). */
function progressPrinter(tty: boolean): Progress {
  const lastDecile = new Map<string, number>();
  return ({ file, done, total }) => {
    const mib = (n: number) => (n / 1048576).toFixed(1);
    if (total === undefined) return;
    const pct = Math.floor((done / total) * 100);
    if (tty) {
      const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, ' ');
      process.stderr.write(`\r${file.padEnd(14)} [${bar}] ${String(pct).padStart(3)}% ${mib(done)}/${mib(total)} MiB${done >= total ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(pct / 10);
    if (decile !== lastDecile.get(file)) {
      lastDecile.set(file, decile);
      process.stderr.write(`${file}: ${pct}% (${mib(done)}/${mib(total)} MiB)\n`);
    }
  };
}

function assetSource(config: Config, schematic: string | undefined): AssetSource {
  const id = schematic ?? config.talos.schematic_id;
  if (id && !/^[0-9a-f]{64}$/.test(id)) throw new UsageError(`--schematic ${id}: a 64-character Image Factory schematic id`);
  return sourceFor({ schematic: id, talosUrl: config.assets.talos_url, factoryUrl: config.assets.factory_url });
}

export async function assetsCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(
    argv,
    { config: { type: 'string', short: 'c' }, talos: { type: 'string' }, arch: { type: 'string' }, schematic: { type: 'string' }, sha256: { type: 'string' }, force: { type: 'boolean' }, ...OUTPUT_OPTIONS, help: { type: 'boolean', short: 'h' } },
    ASSETS_USAGE,
    'assets',
  );
  if (!parsed) return 2;
  const { values: v, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (v.help || !sub) {
    (v.help ? process.stdout : process.stderr).write(ASSETS_USAGE);
    return v.help ? 0 : 2;
  }
  const format = outputFormatOf(v, 'assets');
  if (!format) return 2;
  const config = loadConfig({ file: v.config, detect: () => '127.0.0.1', discover: true });
  try {
    switch (sub) {
      case 'fetch': {
        const results = await fetchTalosAssets({
          assetsDir: config.assets_dir,
          version: version(v.talos, config),
          arches: arches(v.arch, config),
          source: assetSource(config, v.schematic),
          onProgress: progressPrinter(Boolean(process.stderr.isTTY)),
        });
        for (const r of results) out(`${r.status.padEnd(8)} ${version(v.talos, config)}/${r.arch}/${r.file}  ${r.bytes} bytes  sha256 ${r.sha256}${r.resumedAt ? `  (resumed at ${r.resumedAt})` : ''}\n`);
        return 0;
      }
      case 'import': {
        if (!v.talos || !v.arch) throw new UsageError('import needs --talos <version> and --arch <arch>');
        const arch = arches(v.arch, config);
        if (arch.length !== 1) throw new UsageError('import takes one --arch');
        const files = importFiles(rest, arch[0]!);
        const results = await importTalosAssets({ assetsDir: config.assets_dir, version: version(v.talos, config), arch: arch[0]!, files, force: v.force });
        for (const r of results) out(`imported ${v.talos}/${r.arch}/${r.file}  ${r.bytes} bytes  sha256 ${r.sha256}\n`);
        return 0;
      }
      case 'list': {
        const listing = listAssets(config);
        out(formatted(format, listing, () => assetsTable(listing)));
        return 0;
      }
      case 'ipxe': {
        if (rest.length > 1) throw new UsageError('ipxe takes one file or URL');
        const sha256 = v.sha256?.toLowerCase() ?? (rest.length ? undefined : config.assets.ipxe_arm64_sha256 || undefined);
        if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError(`--sha256 ${sha256}: 64 hex characters`);
        const r = await installIpxeBinary({ assetsDir: config.assets_dir, from: rest[0] ?? config.assets.ipxe_arm64_url, sha256 });
        out(`installed ${path.relative(config.assets_dir, r.dest)} (${r.arch})  ${r.bytes} bytes  sha256 ${r.sha256}\n`);
        return 0;
      }
      case 'grub': {
        if (rest.length !== 1) throw new UsageError('grub takes one file or URL: grubnetaa64.efi.signed from grub-efi-arm64-signed');
        const sha256 = v.sha256?.toLowerCase();
        if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError(`--sha256 ${sha256}: 64 hex characters`);
        const r = await installGrubNetboot({ assetsDir: config.assets_dir, from: rest[0]!, sha256 });
        out(`installed ${path.relative(config.assets_dir, r.dest)} (${r.arch})  ${r.bytes} bytes  sha256 ${r.sha256}\n`);
        return 0;
      }
      default:
        unknownCommand('genesis assets', String(sub), ASSETS_USAGE);
        return 2;
    }
  } catch (err) {
    return cliFailure(err, `genesis assets ${sub}`, [AssetError]);
  }
}

/** A directory holding release/factory names, or two files: the kernel, then the initramfs. */
function importFiles(args: string[], arch: Arch): Record<string, string> {
  if (args.length === 2) return { vmlinuz: args[0]!, 'initramfs.xz': args[1]! };
  if (args.length !== 1) throw new UsageError('import takes a directory, or the kernel and the initramfs');
  const dir = args[0]!;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${dir} is not a directory`);
  const names = importNames(arch);
  const files: Record<string, string> = {};
  for (const f of ASSET_FILES) {
    const found = names[f].map((n) => path.join(dir, n)).find((p) => existsSync(p));
    if (!found) throw new CliError(`${dir} has none of ${names[f].join(', ')}`);
    files[f] = found;
  }
  return files;
}

type AssetFile = { arch: string; file: string; bytes: number | null; sha256: string | null };
type AssetsListing = {
  versions: Array<{ version: string; default: boolean; nodes: number; files: AssetFile[] }>;
  /** Versions machines are assigned that are not present. */
  missing: Array<{ version: string; nodes: number }>;
};

/** What is in the assets directory, and how many assigned machines use each version. */
function listAssets(config: Config): AssetsListing {
  const root = path.join(config.assets_dir, 'talos');
  const usage = new Map<string, number>();
  readInventory(config.data_dir, (inv) => {
    for (const n of inv.list()) if (n.role !== 'unassigned') usage.set(n.talosVersion ?? config.talos.version, (usage.get(n.talosVersion ?? config.talos.version) ?? 0) + 1);
  });
  const names = existsSync(root) ? readdirSync(root).filter((d) => statSync(path.join(root, d)).isDirectory()).sort() : [];
  const versions = names.map((version) => ({
    version,
    default: version === config.talos.version,
    nodes: usage.get(version) ?? 0,
    files: readdirSync(path.join(root, version))
      .sort()
      .flatMap((arch) => {
        const dir = path.join(root, version, arch);
        const sums = readSums(dir);
        return ASSET_FILES.map((file) => {
          const p = path.join(dir, file);
          return existsSync(p) ? { arch, file, bytes: statSync(p).size, sha256: sums.get(file) ?? null } : { arch, file, bytes: null, sha256: null };
        });
      }),
  }));
  const missing = [...usage].filter(([v]) => !names.includes(v)).map(([version, nodes]) => ({ version, nodes }));
  return { versions, missing };
}

function assetsTable(l: AssetsListing): string {
  const plural = (n: number) => `${n} node${n === 1 ? '' : 's'}`;
  const lines: string[] = [];
  for (const v of l.versions) {
    lines.push(`${v.version}${v.default ? ' (default)' : ''}  used by ${plural(v.nodes)}`);
    for (const f of v.files) {
      lines.push(f.bytes === null ? `  ${f.arch}/${f.file.padEnd(12)} missing` : `  ${f.arch}/${f.file.padEnd(12)} ${String(f.bytes).padStart(10)} bytes  sha256 ${f.sha256 ?? '(not recorded)'}`);
    }
  }
  for (const m of l.missing) lines.push(`${m.version}  used by ${plural(m.nodes)}  NOT PRESENT: genesis assets fetch --talos ${m.version}`);
  return (lines.length ? lines.join('\n') : 'no Talos assets yet: genesis assets fetch') + '\n';
}
