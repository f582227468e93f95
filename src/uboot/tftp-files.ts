// U-Boot's TFTP names (uboot/pxelinux.ts) answered from the boot conversation: the boot script,
// each machine's script and pxelinux config, and the Talos kernel and initramfs below
// <assets_dir>/talos (U-Boot's `pxe` fetches them over TFTP), and a Linux profile's kernel and
// initrd as linux/<profile>/<arch>/<file> from <assets_dir>/<profile>/<arch>. A Raspberry Pi's prefixed firmware
// requests (uboot/raspberry-pi.ts) come from <assets_dir>/rpi. Anything else is not ours.
//
// A machine's own script and pxelinux config are its turn in the boot conversation (recorded,
// planned, a token issued): like an iPXE install script, that runs in the boot work's time slices
// (scheduling/time-slices.ts), after the cheap requests that arrived with it.

import path from 'node:path';
import { sourceAddress } from '../net/address.ts';
import type { TimeSlices } from '../scheduling/time-slices.ts';
import { BufferSource, DirectoryProvider, type FileProvider, type OpenResult, type TftpClient } from '../tftp/provider.ts';
import { classifyUbootFile } from './pxelinux.ts';
import { classifyPiRequest, DEFAULT_PI_CONFIG } from './raspberry-pi.ts';

/** What the U-Boot files need from the boot conversation (BootService). */
export interface UbootConversation {
  ubootBootScript(): Buffer;
  ubootMachineScript(mac: string, ip: string | undefined): Promise<Buffer>;
  pxelinuxConfig(mac: string, ip: string | undefined): Promise<Buffer | undefined>;
}

const notFound = (message: string): OpenResult => ({ ok: false, error: 'not-found', message });
const served = (data: Buffer | undefined, missing: string): OpenResult => (data ? { ok: true, source: new BufferSource(data) } : notFound(missing));

export class UbootFiles implements FileProvider {
  private readonly boot: UbootConversation;
  private readonly assets: DirectoryProvider;
  private readonly pi: DirectoryProvider;
  /** The whole assets dir, for Linux profiles' files (the HTTP asset route serves the same). */
  private readonly assetsRoot: DirectoryProvider;
  private readonly work: Pick<TimeSlices, 'run'>;

  constructor(boot: UbootConversation, assetsDir: string, work: Pick<TimeSlices, 'run'>) {
    this.boot = boot;
    this.work = work;
    this.assets = new DirectoryProvider(path.join(assetsDir, 'talos'));
    this.assetsRoot = new DirectoryProvider(assetsDir);
    this.pi = new DirectoryProvider(path.join(assetsDir, 'rpi'));
  }

  async open(name: string, client: TftpClient): Promise<OpenResult | undefined> {
    const pi = classifyPiRequest(name);
    if (pi) {
      const found = await this.pi.open(pi.file);
      if (!found.ok && found.error === 'not-found' && pi.file === 'config.txt') return served(Buffer.from(DEFAULT_PI_CONFIG), 'file not found');
      return found;
    }
    const file = classifyUbootFile(name);
    if (!file) return undefined;
    const ip = sourceAddress(client.address);
    switch (file.kind) {
      case 'boot-script':
        return served(this.boot.ubootBootScript(), 'file not found');
      case 'machine-script':
        return served(await this.work.run(() => this.boot.ubootMachineScript(file.mac, ip)), 'file not found');
      case 'pxelinux-mac':
        return served(await this.work.run(() => this.boot.pxelinuxConfig(file.mac, ip)), 'no install entry for this machine now');
      case 'pxelinux-fallback':
        // A shared entry would boot every board alike; Genesis decides per MAC only.
        return notFound('Genesis answers pxelinux.cfg/01-<mac> only');
      case 'talos-asset':
        return this.assets.open(`${file.version}/${file.arch}/${file.file}`);
      case 'profile-asset':
        return this.assetsRoot.open(`${file.profile}/${file.arch}/${file.file}`);
    }
  }
}
