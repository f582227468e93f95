// scripts/build-native.sh, npm ci's install script, run on a copy of the sources: it builds the
// native addons (sendfile, TFTP pump) with the machine's compiler, and without one (or with one that fails) it says so
// and exits 0, so installing Genesis never fails for want of the addon.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSendfileAddon } from '../../src/bulk/sendfile-addon.ts';
import { loadTftpPumpAddon } from '../../src/tftp/native-pump.ts';
import { run } from '../helpers/run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const copies: string[] = [];

/** A directory holding what the script needs, as a checkout would. */
function checkout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-build-native-'));
  copies.push(dir);
  mkdirSync(path.join(dir, 'scripts'));
  mkdirSync(path.join(dir, 'native'));
  copyFileSync(path.join(ROOT, 'scripts/build-native.sh'), path.join(dir, 'scripts/build-native.sh'));
  for (const f of readdirSync(path.join(ROOT, 'native'))) copyFileSync(path.join(ROOT, 'native', f), path.join(dir, 'native', f));
  return dir;
}

afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe('scripts/build-native.sh', () => {
  it('builds addons that load, with the warnings an error', async () => {
    const dir = checkout();
    const r = await run('sh', [path.join(dir, 'scripts/build-native.sh')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('genesis: built build/native/sendfile.node\ngenesis: built build/native/tftp-pump.node\n');
    const loaded = loadSendfileAddon(path.join(dir, 'build/native/sendfile.node'));
    expect(loaded.reason).toBeUndefined();
    expect(typeof loaded.addon?.create).toBe('function');
    const pump = loadTftpPumpAddon(path.join(dir, 'build/native/tftp-pump.node'));
    expect(pump.reason).toBeUndefined();
    expect(typeof pump.addon?.start).toBe('function');
  });

  it('without a compiler, says so and exits 0, building nothing', async () => {
    const dir = checkout();
    const r = await run('sh', [path.join(dir, 'scripts/build-native.sh')], { env: { ...process.env, CC: 'no-such-cc' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'genesis: native addons not built (no C compiler: install gcc and libc6-dev, then run sh scripts/build-native.sh); large downloads go through the sender process and TFTP blocks are sent from JavaScript\n',
    );
    expect(existsSync(path.join(dir, 'build'))).toBe(false);
  });

  it('with a compiler that fails (no C library headers), says so and exits 0, leaving no partial file', async () => {
    const dir = checkout();
    const r = await run('sh', [path.join(dir, 'scripts/build-native.sh')], { env: { ...process.env, CC: 'false' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('genesis: sendfile addon not built (false failed, above; Debian needs gcc and libc6-dev); large downloads go through the sender process\n');
    expect(r.stderr).toContain('genesis: tftp-pump addon not built (false failed, above; Debian needs gcc and libc6-dev); TFTP blocks are sent from JavaScript\n');
    expect(readdirSync(path.join(dir, 'build/native'))).toEqual([]);
  });
});
