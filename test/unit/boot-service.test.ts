// The boot conversation (provision/service.ts) against the inventory fakes: no SQLite, no
// sockets. What a machine's script request comes to, for each kind of machine and store.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/domain/node.ts';
import { InventoryError } from '../../src/inventory/errors.ts';
import type { LinuxProfileCheck } from '../../src/ipxe/plan.ts';
import { BootService, type ConfigIssuer } from '../../src/provision/service.ts';
import { FileUnavailable } from '../../src/tftp/provider.ts';
import { BrokenInventory, FixedInventory, fullInventory } from '../fakes/inventory.ts';

const MAC = '52:54:00:12:34:56';
const OTHER = '52:54:00:12:34:57';
const LATER = () => new Date(Date.now() + 3600_000).toISOString();

function service(inventory: ConstructorParameters<typeof BootService>[0]['inventory'], over: { problem?: string; maxNodes?: number; assets?: boolean; linux?: LinuxProfileCheck } = {}) {
  const tokens: Array<{ mac: string; ip?: string }> = [];
  const configs: ConfigIssuer = {
    renderer: { problem: () => over.problem },
    issueToken: (mac, ip) => {
      tokens.push({ mac, ip });
      return 'ab'.repeat(32);
    },
  };
  const boot = new BootService({
    inventory,
    configs,
    baseUrl: () => 'http://192.0.2.1:8080',
    defaultTalosVersion: 'v1.14.0',
    retrySeconds: 10,
    extraKernelArgs: [],
    assetsPresent: () => over.assets ?? true,
    maxNodes: over.maxNodes,
    linux: over.linux && {
      check: () => over.linux,
      boot: (_node, token) => ({ profile: 'k3s', kernel: 'vmlinuz', initrd: 'initrd', args: ['ip=dhcp', `ds=nocloud;s=http://192.0.2.1:8080/cloud-init/${MAC}/${token}/`] }),
    },
    log: pino({ level: 'silent' }),
  });
  return { boot, tokens };
}

const assigned = (over: Partial<Node> = {}): Partial<Node> & { mac: string } => ({ mac: MAC, role: 'worker', state: 'assigned', arch: 'amd64', firmware: 'uefi', windowUntil: LATER(), ...over });

describe('BootService with the inventory fakes', () => {
  it('records a new machine and sends it the waiting loop', async () => {
    const inventory = new FixedInventory();
    const { boot, tokens } = service(inventory);
    const answer = await boot.nodeScript({ mac: MAC.replace(/:/g, '-'), buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    expect(answer.outcome).toBe('script');
    expect(answer.outcome === 'script' && answer.script).toMatch(/^#!ipxe\n[\s\S]*sleep 10/);
    expect(inventory.get(MAC)).toMatchObject({ role: 'unassigned', arch: 'amd64', firmware: 'uefi', lastIp: '192.0.2.10' });
    expect(inventory.events.map((e) => e.type)).toEqual(['discovered']);
    expect(tokens).toEqual([]);
  });

  it('sends an assigned machine inside its window the installer, with a token bound to its address', async () => {
    const inventory = new FixedInventory([assigned()]);
    const { boot, tokens } = service(inventory);
    const answer = await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    expect(answer.outcome === 'script' && answer.script).toContain(`http://192.0.2.1:8080/talos/config/${MAC}/${'ab'.repeat(32)}`);
    expect(tokens).toEqual([{ mac: MAC, ip: '192.0.2.10' }]);
    expect(inventory.get(MAC)?.windowIp).toBe('192.0.2.10');
    expect(inventory.events).toEqual([{ mac: MAC, type: 'script-served', actor: 'boot', detail: { plan: 'install', talosVersion: 'v1.14.0' } }]);
  });

  it('holds a machine whose config cannot be rendered, once, with the reason', async () => {
    const inventory = new FixedInventory([assigned()]);
    const { boot, tokens } = service(inventory, { problem: 'machine.install.disk: required' });
    for (let i = 0; i < 3; i++) await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    expect(tokens).toEqual([]);
    expect(inventory.get(MAC)?.waiting).toBe('waiting: its machine config cannot be rendered: machine.install.disk: required');
    expect(inventory.events.filter((e) => e.type === 'boot-waiting')).toHaveLength(1);
  });

  it('a second address inside the window is a conflict: neither gets the installer', async () => {
    const inventory = new FixedInventory([assigned({ windowIp: '192.0.2.10' })]);
    const { boot, tokens } = service(inventory);
    const answer = await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.66');
    expect(answer.outcome === 'script' && answer.script).not.toContain('/talos/config/');
    expect(inventory.get(MAC)?.conflict).toContain('192.0.2.10 and 192.0.2.66');
    expect(tokens).toEqual([]);
  });

  it('an installed machine with local boot http404 gets local-disk, and its record is not touched', async () => {
    const inventory = new FixedInventory([assigned({ state: 'installed', localBoot: 'http404', windowUntil: null, lastIp: '192.0.2.10' })]);
    const before = inventory.get(MAC);
    const { boot } = service(inventory);
    expect(await boot.nodeScript({ mac: MAC, buildarch: 'x86_64' }, '192.0.2.99')).toEqual({ outcome: 'local-disk' });
    expect(inventory.get(MAC)).toEqual(before);
    expect(inventory.events).toEqual([]);
  });

  it('a request without a valid MAC is no-mac, and nothing is recorded', async () => {
    const inventory = new FixedInventory();
    const { boot } = service(inventory);
    for (const mac of [undefined, '', 'zz:zz', '52:54:00:12:34']) {
      const answer = await boot.nodeScript({ mac }, '192.0.2.10');
      expect(answer, String(mac)).toMatchObject({ outcome: 'no-mac', script: expect.stringContaining('no valid MAC') });
    }
    expect(inventory.nodes.size).toBe(0);
  });

  it('a full inventory refuses a new MAC with a script that says so; known machines still boot', async () => {
    const { inventory, maxNodes } = fullInventory([assigned()]);
    const { boot } = service(inventory, { maxNodes });
    const refused = await boot.nodeScript({ mac: OTHER, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.11');
    expect(refused.outcome === 'script' && refused.script).toContain('the inventory is full');
    expect(inventory.get(OTHER)).toBeUndefined();
    const known = await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    expect(known.outcome === 'script' && known.script).toContain('/talos/config/');
  });

  it('a broken store surfaces as its storage error (the HTTP layer makes it a 503), never as a script', async () => {
    const { boot } = service(new BrokenInventory());
    let caught: unknown;
    try {
      await boot.nodeScript({ mac: MAC, buildarch: 'x86_64' }, '192.0.2.10');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InventoryError);
    expect((caught as InventoryError).isStorageFailure).toBe(true);
  });

  it("a broken store reaches a U-Boot or GRUB board as FileUnavailable, whose one line says what failed and that nothing changed", async () => {
    const { boot } = service(new BrokenInventory());
    const told = 'the inventory database is unavailable; nothing was changed';
    await expect(boot.ubootMachineScript(MAC, '192.0.2.10')).rejects.toThrow(new FileUnavailable(told));
    await expect(boot.pxelinuxConfig(MAC, '192.0.2.10')).rejects.toBeInstanceOf(FileUnavailable);
    await expect(boot.grubMachineConfig(MAC, '192.0.2.10')).rejects.toThrow(told);
    // Anything else stays what it was: a bug is not dressed up as a full disk.
    const odd = new FixedInventory();
    odd.atomicallyShared = () => Promise.reject(new TypeError('a bug'));
    await expect(service(odd).boot.pxelinuxConfig(MAC, '192.0.2.10')).rejects.toBeInstanceOf(TypeError);
  });

  it('SMBIOS strings: vendor placeholders and control characters are dropped, real values kept (at most 128 characters)', async () => {
    const inventory = new FixedInventory();
    const { boot } = service(inventory);
    const cases: Array<[string, string | undefined]> = [
      ['To Be Filled By O.E.M.', undefined],
      ['Default string', undefined],
      ['Not Specified', undefined],
      ['0000000', undefined],
      ['   ', undefined],
      ['ASRock\u0000\u001b[31m', 'ASRock[31m'],
      ['  Intel(R) Client Systems ', 'Intel(R) Client Systems'],
      ['x'.repeat(300), 'x'.repeat(128)],
    ];
    for (const [i, [raw, kept]] of cases.entries()) {
      const mac = `52:54:00:00:01:${String(i).padStart(2, '0')}`;
      await boot.nodeScript({ mac, manufacturer: raw, serial: raw, uuid: '00000000-0000-0000-0000-000000000000' }, `192.0.2.${20 + i}`);
      expect(inventory.get(mac), JSON.stringify(raw)).toMatchObject({ manufacturer: kept ?? null, serial: kept ?? null, uuid: null });
    }
  });

  it('a machine with a Linux profile that is ready gets its kernel, initrd and datasource URL, with a token bound to its address', async () => {
    const inventory = new FixedInventory([assigned()]);
    const { boot, tokens } = service(inventory, { linux: { profile: 'k3s', kind: 'ready' } });
    const answer = await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    const script = answer.outcome === 'script' ? answer.script : '';
    expect(script).toContain(`kernel http://192.0.2.1:8080/assets/k3s/amd64/vmlinuz initrd=initrd ip=dhcp ds=nocloud;s=http://192.0.2.1:8080/cloud-init/${MAC}/${'ab'.repeat(32)}/ || goto failed`);
    expect(script).toContain('initrd --name initrd http://192.0.2.1:8080/assets/k3s/amd64/initrd || goto failed');
    expect(tokens).toEqual([{ mac: MAC, ip: '192.0.2.10' }]);
    expect(inventory.events).toEqual([{ mac: MAC, type: 'script-served', actor: 'boot', detail: { plan: 'install-linux', profile: 'k3s' } }]);
  });

  it('a machine with a Linux profile waits, saying why, when the profile cannot be used, and costs no token', async () => {
    const inventory = new FixedInventory([assigned()]);
    const { boot, tokens } = service(inventory, { linux: { profile: 'k3s', kind: 'problem', detail: "k3s user-data: cloud-init's schema: runcmd: must be array" } });
    await boot.nodeScript({ mac: MAC, buildarch: 'x86_64', platform: 'efi' }, '192.0.2.10');
    expect(inventory.get(MAC)?.waiting).toBe("waiting: its boot profile k3s cannot be used: k3s user-data: cloud-init's schema: runcmd: must be array");
    expect(tokens).toEqual([]);
  });

  it('on U-Boot and GRUB, a machine with a Linux profile gets its kernel with its datasource, the arguments whole', async () => {
    const uboot = new FixedInventory([assigned({ arch: 'arm64', firmware: 'u-boot' })]);
    const u = service(uboot, { linux: { profile: 'k3s', kind: 'ready' } });
    expect((await u.boot.ubootMachineScript(MAC, '192.0.2.10')).toString('latin1')).toContain(`Genesis: booting k3s arm64 for ${MAC} as worker`);
    const entry = (await u.boot.pxelinuxConfig(MAC, '192.0.2.10'))?.toString();
    const ds = `ds=nocloud;s=http://192.0.2.1:8080/cloud-init/${MAC}/${'ab'.repeat(32)}/`;
    expect(entry).toBe(['default linux', 'label linux', '  kernel linux/k3s/arm64/vmlinuz', '  initrd linux/k3s/arm64/initrd', `  append ip=dhcp ${ds}`, ''].join('\n'));
    expect(u.tokens).toEqual([{ mac: MAC, ip: '192.0.2.10' }]);
    const grub = new FixedInventory([assigned({ arch: 'arm64', firmware: 'uefi' })]);
    const gr = service(grub, { linux: { profile: 'k3s', kind: 'ready' } });
    const cfg = (await gr.boot.grubMachineConfig(MAC, '192.0.2.10')).toString();
    // GRUB would split an unquoted argument at ';': each one is single-quoted.
    expect(cfg).toContain(`linux /linux/k3s/arm64/vmlinuz 'ip=dhcp' '${ds}'\ninitrd /linux/k3s/arm64/initrd\nboot\n`);
    expect(gr.tokens).toEqual([{ mac: MAC, ip: '192.0.2.10' }]);
  });
});
