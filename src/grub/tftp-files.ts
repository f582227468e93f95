// GRUB's TFTP names (grub/config.ts) answered from the boot conversation: the GRUB image from
// <assets_dir>/grub, the bootstrap loop, and each machine's config. The Talos kernel and
// initramfs GRUB then loads (/talos/<version>/<arch>/…) are U-Boot's names too, answered by
// uboot/tftp-files.ts. Anything else below grub/ is a probe of GRUB's (modules, locale,
// arm64-efi/grub.cfg): not found, quietly.
//
// A machine's config is its turn in the boot conversation: it runs in the boot work's time slices
// (scheduling/time-slices.ts), like an iPXE install script.

import path from 'node:path';
import { sourceAddress } from '../net/address.ts';
import type { TimeSlices } from '../scheduling/time-slices.ts';
import { BufferSource, DirectoryProvider, type FileProvider, type OpenResult, type TftpClient } from '../tftp/provider.ts';
import { classifyGrubFile } from './config.ts';

/** What the GRUB files need from the boot conversation (BootService). */
export interface GrubConversation {
  grubBootstrap(): Buffer;
  grubMachineConfig(mac: string, ip: string | undefined): Promise<Buffer | undefined>;
}

const notFound = (message: string): OpenResult => ({ ok: false, error: 'not-found', message });

export class GrubFiles implements FileProvider {
  private readonly boot: GrubConversation;
  private readonly images: DirectoryProvider;
  private readonly work: Pick<TimeSlices, 'run'>;

  constructor(boot: GrubConversation, assetsDir: string, work: Pick<TimeSlices, 'run'>) {
    this.boot = boot;
    this.work = work;
    this.images = new DirectoryProvider(path.join(assetsDir, 'grub'));
  }

  async open(name: string, client: TftpClient): Promise<OpenResult | undefined> {
    const file = classifyGrubFile(name);
    if (!file) return undefined;
    switch (file.kind) {
      case 'image':
        return this.images.open(path.basename(name));
      case 'bootstrap':
        return { ok: true, source: new BufferSource(this.boot.grubBootstrap()) };
      case 'machine': {
        const ip = sourceAddress(client.address);
        const data = await this.work.run(() => this.boot.grubMachineConfig(file.mac, ip));
        return data ? { ok: true, source: new BufferSource(data) } : notFound('not recorded');
      }
      case 'other':
        return notFound('file not found');
    }
  }
}
