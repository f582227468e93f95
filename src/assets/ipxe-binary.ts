// Bring an iPXE EFI binary into assets/ipxe: from a URL with a pinned sha256 (Debian ships no
// arm64 iPXE), or from a file the operator built or downloaded. Checked to be an EFI application
// for amd64 or arm64 and put where the proxyDHCP points that architecture, atomically.
// Debian's arm64 network GRUB (the fallback without iPXE) comes in the same way, to assets/grub.

import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { GRUB_NETBOOT_ARM64, ipxeEfiPath } from '../ipxe/binaries.ts';
import { inspectEfiBinary } from './efi-binary.ts';
import { AssetError, downloadFile, sha256OfFile } from './fetch.ts';

export type IpxeInstall = { arch: 'amd64' | 'arm64'; dest: string; sha256: string; bytes: number };

type Source = { assetsDir: string; from: string; sha256?: string };

export function installIpxeBinary(o: Source): Promise<IpxeInstall> {
  return installEfiBinary(o, path.join(o.assetsDir, 'ipxe'), 'an iPXE EFI build (snponly.efi) is expected', (arch) => ipxeEfiPath(arch));
}

/** Debian's grubnetaa64.efi (package grub-efi-arm64-signed): arm64 only. */
export function installGrubNetboot(o: Source): Promise<IpxeInstall> {
  return installEfiBinary(o, o.assetsDir, "Debian's grubnetaa64.efi (package grub-efi-arm64-signed) is expected", (arch) =>
    arch === 'arm64' ? GRUB_NETBOOT_ARM64 : `an x86-64 EFI application: Genesis uses GRUB for arm64 only (x86 machines get iPXE)`,
  );
}

/** `place`: where below `root` an EFI binary of this architecture goes; a text with a space is a refusal. */
async function installEfiBinary(o: Source, root: string, expected: string, place: (arch: 'amd64' | 'arm64') => string): Promise<IpxeInstall> {
  const dir = root;
  const incoming = path.join(dir, `.incoming-${process.pid}.efi`);
  await mkdir(dir, { recursive: true });
  const isUrl = /^https?:\/\//.test(o.from);
  if (isUrl && !o.sha256) throw new AssetError(`${o.from}: a download needs its sha256 pinned (--sha256, or assets.ipxe_arm64_sha256)`);
  try {
    if (isUrl) await downloadFile(o.from, incoming, { expectedSha256: o.sha256 });
    else {
      await copyFile(o.from, incoming).catch((err: NodeJS.ErrnoException) => {
        throw new AssetError(`${o.from}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
    }
    const sha256 = await sha256OfFile(incoming);
    if (o.sha256 && sha256 !== o.sha256) throw new AssetError(`${o.from}: sha256 ${sha256} does not match the expected ${o.sha256}`);
    const fh = await open(incoming, 'r');
    const head = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const { size } = await fh.stat();
    await fh.sync();
    await fh.close();
    const verdict = inspectEfiBinary(head.subarray(0, bytesRead));
    if (!verdict.ok) throw new AssetError(`${o.from}: ${verdict.problem}; ${expected}`);
    const where = place(verdict.arch);
    if (where.includes(' ')) throw new AssetError(`${o.from}: ${where}`);
    const dest = path.join(dir, where);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(incoming, dest);
    return { arch: verdict.arch, dest, sha256, bytes: size };
  } finally {
    await rm(incoming, { force: true });
    await rm(`${incoming}.part`, { force: true });
  }
}
