// Where Talos boot assets come from and where they go, pure. GitHub releases publish
// `vmlinuz-<arch>`, `initramfs-<arch>.xz` and a `sha256sum.txt`; the Image Factory serves
// `kernel-<arch>` and `initramfs-<arch>.xz` per schematic and publishes no checksums, so for it
// the sha256 of the first fetch is recorded and later fetches and starts are checked against it.

import path from 'node:path';
import type { Arch } from '../domain/node.ts';

export const ASSET_FILES = ['vmlinuz', 'initramfs.xz'] as const;
export type AssetFile = (typeof ASSET_FILES)[number];

/** Recorded next to the files: `<sha256>  <file>` lines, as sha256sum writes them. */
export const SUMS_FILE = 'SHA256SUMS';

export type AssetSource = { kind: 'release'; baseUrl: string } | { kind: 'factory'; baseUrl: string; schematic: string };

/** The Image Factory when a schematic is set (system extensions baked in), else GitHub releases. */
export function sourceFor(o: { schematic: string; talosUrl: string; factoryUrl: string }): AssetSource {
  return o.schematic ? { kind: 'factory', baseUrl: o.factoryUrl, schematic: o.schematic } : { kind: 'release', baseUrl: o.talosUrl };
}

export type RemoteAsset = { file: AssetFile; url: string; remoteName: string };

export function talosAssetDir(assetsDir: string, version: string, arch: Arch): string {
  return path.join(assetsDir, 'talos', version, arch);
}

export function remoteAssets(src: AssetSource, version: string, arch: Arch): RemoteAsset[] {
  const base = src.baseUrl.replace(/\/+$/, '');
  if (src.kind === 'release') {
    return [
      { file: 'vmlinuz', remoteName: `vmlinuz-${arch}`, url: `${base}/${version}/vmlinuz-${arch}` },
      { file: 'initramfs.xz', remoteName: `initramfs-${arch}.xz`, url: `${base}/${version}/initramfs-${arch}.xz` },
    ];
  }
  const dir = `${base}/image/${src.schematic}/${version}`;
  return [
    { file: 'vmlinuz', remoteName: `kernel-${arch}`, url: `${dir}/kernel-${arch}` },
    { file: 'initramfs.xz', remoteName: `initramfs-${arch}.xz`, url: `${dir}/initramfs-${arch}.xz` },
  ];
}

/** The published checksum list, if the source has one. */
export function checksumUrl(src: AssetSource, version: string): string | undefined {
  return src.kind === 'release' ? `${src.baseUrl.replace(/\/+$/, '')}/${version}/sha256sum.txt` : undefined;
}

/** `<hex>  <name>` (or `<hex> *<name>`) lines; anything else is skipped. */
export function parseSums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](\S+)\s*$/i.exec(line.trim());
    if (m) out.set(path.posix.basename(m[2]!), m[1]!.toLowerCase());
  }
  return out;
}

export function formatSums(sums: Map<string, string>): string {
  return [...sums].map(([name, hex]) => `${hex}  ${name}\n`).join('');
}

/** Names a user might have in a directory to import: release names, factory names, or ours. */
export function importNames(arch: Arch): Record<AssetFile, string[]> {
  return { vmlinuz: [`vmlinuz-${arch}`, `kernel-${arch}`, 'vmlinuz'], 'initramfs.xz': [`initramfs-${arch}.xz`, 'initramfs.xz'] };
}
