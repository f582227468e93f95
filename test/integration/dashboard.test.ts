// The dashboard in a real browser: Debian's Chromium driven by playwright-core. An operator logs
// in, sees a machine appear the moment it boots, assigns it, and watches it install (its Talos
// events and kernel log arrive over the real sink and receiver) without reloading the page.
// The login cookie and CSRF defences are checked with a real HTTP client and a cross-site page.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeScriptUrl, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { contrastFailuresScript, type ContrastFailure } from '../helpers/contrast.ts';
import { run } from '../helpers/run.ts';
import { kmsg, TalosReporter } from '../helpers/talos-reporter.ts';
import { until } from '../helpers/wait.ts';

/** Screenshots land here; CI keeps the directory as an artifact. */
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let g: TestGenesis;
let browser: Browser;
const reporters: TalosReporter[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  g = await startGenesis();
  browser = await chromium.launch({ executablePath: CHROMIUM });
}, 60_000);
afterAll(async () => {
  await Promise.all(reporters.map((r) => r.close()));
  await browser?.close();
  await g?.close();
});

async function login(page: Page, token: string): Promise<void> {
  await page.goto(g.url);
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function bootFrom(ip: string, mac: string): Promise<string> {
  const r = await run('curl', ['-sf', '--interface', ip, nodeScriptUrl(g.url, mac)]);
  expect(r.code).toBe(0);
  return r.stdout;
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const family = parsePrometheusTextFormat(await (await fetch(`${g.url}/metrics`)).text()).find((f) => f.name === name);
  return Number(family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);
}

describe('dashboard in Chromium', () => {
  it('log in, see a machine appear live, assign it, watch it install, read its kernel log', async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await login(page, 'not-the-token');
    await expect.poll(() => page.locator('#login-error').textContent()).toBe('That token was not accepted.');
    // Nothing to log out of yet: the button's `hidden` is not overridden by the button styles.
    expect(await page.locator('#logout').isHidden()).toBe(true);
    // Nor any live updates to show: no "offline" pill beside a server that answered the page.
    expect(await page.locator('#live').isHidden()).toBe(true);
    expect(await page.locator('#login .hint').textContent()).toContain('genesis token show');
    await login(page, TEST_TOKEN);
    await page.locator('#empty').waitFor();
    expect(await page.locator('#login').isHidden()).toBe(true);
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');

    // The session cookie: HttpOnly, SameSite=Strict, invisible to the page's script.
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'genesis_session', httpOnly: true, sameSite: 'Strict' });
    expect(cookie!.value).not.toContain(TEST_TOKEN);
    expect(await page.evaluate('document.cookie')).toBe('');

    // Marks this page load: if anything below reloaded the page, the mark would be gone.
    await page.evaluate('window.loadMark = 42');

    const mac = '52:54:00:0b:00:02';
    const ip = '127.0.11.2';
    await bootFrom(ip, mac);
    const row = page.locator(`#fleet tr[data-mac="${mac}"]`);
    await row.waitFor();
    expect(await row.locator('td.state').textContent()).toBe('discovered');

    await row.click();
    await page.locator('#role').selectOption('worker');
    await page.locator('#hostname').fill('w-1');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => row.locator('td.state').textContent()).toBe('assigned');
    expect(await row.locator('td').nth(1).textContent()).toBe('w-1');

    // The machine boots again: script, then its config. The page follows.
    const script = await bootFrom(ip, mac);
    const configUrl = / talos\.config=(\S+)/.exec(script)![1]!;
    expect((await run('curl', ['-sf', '-o', '/dev/null', '--interface', ip, configUrl])).code).toBe(0);
    await expect.poll(() => row.locator('td.state').textContent()).toBe('installing');

    // Talos reports in: the install, then the boot from disk; its kernel log streams.
    const talos = new TalosReporter(ip, { host: '127.0.0.1', port: g.eventPorts!.sink }, { host: '127.0.0.1', port: g.eventPorts!.kernelLog });
    reporters.push(talos);
    await talos.start();
    await talos.kernelLog([kmsg('Linux version 6.12.40-talos', 1), kmsg('installer: writing the image to /dev/vda', 2)]);
    talos.publish(
      ['MachineStatusEvent', { stage: 'INSTALLING', status: { ready: false } }],
      ['SequenceEvent', { sequence: 'install', action: 'STOP' }],
      ['MachineStatusEvent', { stage: 'REBOOTING', status: { ready: false } }],
    );
    await expect.poll(() => row.locator('td').nth(5).textContent()).toBe('rebooting');
    expect(await row.locator('td.state').textContent()).toBe('installing');
    await expect.poll(() => page.locator('#klog').textContent()).toContain('installer: writing the image to /dev/vda');

    talos.publish(['SequenceEvent', { sequence: 'boot', action: 'START' }], ['MachineStatusEvent', { stage: 'RUNNING', status: { ready: true } }]);
    await expect.poll(() => row.locator('td.state').textContent()).toBe('installed');
    await expect.poll(() => row.locator('td').nth(5).textContent()).toBe('running, ready');
    expect(await row.locator('td').nth(6).textContent()).toBe('v1.14.0');
    await expect.poll(() => page.locator('#timeline').textContent()).toContain('talos sequence boot start');
    await expect.poll(() => page.locator('#node-state').textContent()).toBe('installed');
    expect(await page.locator('#bootstrap-state').textContent()).toBe('unclaimed');
    expect(await page.evaluate('window.loadMark')).toBe(42);

    // A machine Genesis holds back says why, in its row (readable on a phone, not only on hover).
    const held = '52:54:00:0b:00:0c';
    await g.api('PUT', `/nodes/${held}`, { role: 'worker', talosVersion: 'v1.13.0' });
    await bootFrom('127.0.11.12', held);
    await expect
      .poll(() => page.locator(`#fleet tr[data-mac="${held}"] .attention`).textContent())
      .toBe('⚠ waiting for the Talos v1.13.0 amd64 kernel and initramfs (genesis assets fetch --talos v1.13.0 --arch amd64)');

    // A mixed fleet is counted by architecture in the heading.
    expect(await page.locator('#count').textContent()).toBe('(2)');
    expect((await run('curl', ['-sf', '-o', '/dev/null', '--interface', '127.0.11.13', nodeScriptUrl(g.url, '52:54:00:0b:00:0e', { buildarch: 'arm64' })])).code).toBe(0);
    await expect.poll(() => page.locator('#count').textContent()).toBe('(3: 2 amd64, 1 arm64)');

    // Two machines claim one MAC: the row says so, and the operator says which one is real.
    const claimed = '52:54:00:0b:00:0d';
    await g.api('PUT', `/nodes/${claimed}`, { role: 'worker' });
    await bootFrom('127.0.11.20', claimed);
    await bootFrom('127.0.11.21', claimed);
    const claimedRow = page.locator(`#fleet tr[data-mac="${claimed}"]`);
    await expect.poll(() => claimedRow.locator('.attention').textContent()).toContain('held: two machines claim this MAC inside its install window: 127.0.11.20 and 127.0.11.21');
    await claimedRow.click();
    await page.locator('#conflict').waitFor();
    await page.getByRole('button', { name: 'The real machine is 127.0.11.20' }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Confirmed 127.0.11.20: a new install window is open for it.');
    await expect.poll(() => page.locator('#conflict').isHidden()).toBe(true);
    expect(await (await g.api('GET', `/nodes/${claimed}`)).json()).toMatchObject({ conflict: null, windowIp: '127.0.11.20' });
    expect(await bootFrom('127.0.11.20', claimed)).toContain('talos.config=');
    await row.click();

    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // talosconfig, downloaded with the session.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#talosconfig').click()]);
    expect(download.suggestedFilename()).toBe('talosconfig');
    expect(readFileSync((await download.path())!, 'utf8')).toMatch(/^context: /m);
    const [kube] = await Promise.all([page.waitForEvent('download'), page.locator('#kubeconfig').click()]);
    expect(kube.suggestedFilename()).toBe('kubeconfig');
    expect(readFileSync((await kube.path())!, 'utf8')).toMatch(/^current-context: admin@/m);

    // Usable on a phone: nothing wider than the screen, machines as cards.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(await page.locator('#fleet thead').isHidden()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });

    // Reinstall from the page: confirmed, then the state follows.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Reinstall', exact: true }).click();
    await expect.poll(() => row.locator('td.state').textContent()).toBe('reinstall-requested');

    // Backups: the schedule's state, and "Back up now" with the reason it cannot (no etcd here).
    await expect.poll(() => page.locator('#backup-status').textContent()).toBe('no snapshot yet; the cluster is not bootstrapped yet: nothing to back up');
    await page.getByRole('button', { name: 'Back up now' }).click();
    await expect.poll(() => page.locator('#backup-message').getAttribute('class')).toBe('error');
    const refusal = (await (await g.api('POST', '/backups')).json()) as { error: string; message: string };
    expect(refusal.error).toBe('backup_unavailable');
    expect(await page.locator('#backup-message').textContent()).toBe(refusal.message);

    // Power: the buttons are what the machine's power method can do.
    expect(await page.locator('#power-method').textContent()).toBe('Wake-on-LAN');
    expect(await page.getByRole('button', { name: 'Power on' }).isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: 'Power off' }).isHidden()).toBe(true);
    expect((await g.api('PATCH', `/nodes/${mac}`, { power: { method: 'manual' } })).status).toBe(200);
    await expect.poll(() => page.locator('#power-method').textContent()).toBe('manual');
    expect(await page.getByRole('button', { name: 'Power on' }).isHidden()).toBe(true);
    // Reboot goes to Talos, which does not run here: the reason is on the page, not a stack trace.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Reboot' }).click();
    await expect.poll(() => page.locator('#node-message').getAttribute('class')).toBe('error');
    expect(await page.locator('#node-message').textContent()).toBe('Reboot: cannot reach the Talos API (connect ECONNREFUSED 127.0.11.2:50000)');
    expect(((await (await g.api('GET', `/nodes/${mac}/events`)).json()) as { events: Array<{ type: string; actor: string }> }).events[0]).toMatchObject({ type: 'power' });

    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it('does everything `genesis nodes` does: add by MAC, settings with inline errors, config preview, mark installed, delete; search, sort, counts, permalinks', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await login(page, TEST_TOKEN);
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');

    // Pre-register a machine before it first boots.
    const mac = '52:54:00:0b:00:21';
    await page.locator('#add summary').click();
    await page.locator('#new-mac').fill(mac.toUpperCase());
    await page.locator('#new-role').selectOption('worker');
    await page.locator('#new-hostname').fill('nuc-21');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => page.locator('#register-message').textContent()).toBe(`Added ${mac}: it gets its role the first time it boots.`);
    const row = page.locator(`#fleet tr[data-mac="${mac}"]`);
    await row.waitFor();
    expect(await row.locator('td.state').textContent()).toBe('assigned');
    // Its panel opened, and the address bar is its permalink.
    await expect.poll(() => page.locator('#node-title').textContent()).toBe(`nuc-21 (${mac})`);
    expect(new URL(page.url()).hash).toBe(`#node=${mac}`);
    // Beside the fleet on a wide screen.
    const side = await page.locator('#node').boundingBox();
    const fleetBox = await page.locator('#fleet-card').boundingBox();
    expect(side!.x).toBeGreaterThan(fleetBox!.x + fleetBox!.width - 1);

    // Settings: a wrong value is refused by the server and shown at its field.
    await page.locator('#settings summary').click();
    await page.locator('#install-disk').fill('sda');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#install-disk').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#install-disk-error').textContent()).toBe('installDisk "sda" must be a device path such as /dev/sda or /dev/disk/by-id/…');
    await page.locator('#patch').fill('machine: [unclosed');
    await page.locator('#install-disk').fill('/dev/nvme0n1');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#patch').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#install-disk').getAttribute('aria-invalid')).toBeNull();
    expect(await page.locator('#patch-error').textContent()).toMatch(/^configPatch: /);
    expect(((await (await g.api('GET', `/nodes/${mac}`)).json()) as { installDisk: string | null }).installDisk).toBeNull();

    // Then every setting at once, as `genesis nodes assign` sets them.
    await page.locator('#labels').fill('zone=rack1, disk=ssd');
    await page.locator('#talos-version').fill('v1.13.9');
    await page.locator('#address').fill('192.0.2.21/24');
    await page.locator('#gateway').fill('192.0.2.1');
    await page.locator('#nameservers').fill('192.0.2.1, 192.0.2.2');
    await page.locator('#patch').fill('machine:\n  sysctls:\n    vm.max_map_count: "262144"\n');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Saved installDisk, labels, talosVersion, network, configPatch.');
    expect(await page.locator('#details-error').isHidden()).toBe(true);
    expect(await (await g.api('GET', `/nodes/${mac}`)).json()).toMatchObject({
      installDisk: '/dev/nvme0n1',
      labels: { zone: 'rack1', disk: 'ssd' },
      talosVersion: 'v1.13.9',
      network: { address: '192.0.2.21/24', gateway: '192.0.2.1', nameservers: ['192.0.2.1', '192.0.2.2'] },
      configPatch: 'machine:\n  sysctls:\n    vm.max_map_count: "262144"\n',
    });
    // Bootstrap is for control planes; the refusal sits at the checkbox.
    await page.locator('#bootstrap').check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#bootstrap').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#bootstrap-error').textContent()).toBe('bootstrap: true is for control planes: etcd is bootstrapped on one of them');
    await page.locator('#bootstrap').uncheck();
    // Power through its BMC: the fields appear for IPMI; a bad address is refused at its field.
    expect(await page.locator('#bmc-address').isHidden()).toBe(true);
    await page.locator('#power-method-select').selectOption('ipmi');
    await page.locator('#bmc-address').fill('not an address!');
    await page.locator('#bmc-user').fill('admin');
    await page.locator('#bmc-password-file').fill('/root/bmc.pass');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#bmc-address').getAttribute('aria-invalid')).toBe('true');
    await page.locator('#bmc-address').fill('192.0.2.121');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Saved power.');
    expect(((await (await g.api('GET', `/nodes/${mac}`)).json()) as { power: unknown }).power).toEqual({ method: 'ipmi', bmc: { address: '192.0.2.121', username: 'admin', passwordFile: '/root/bmc.pass' } });
    await expect.poll(() => page.locator('#power-method').textContent()).toBe('IPMI, BMC 192.0.2.121');

    // A disk selector replaces the disk path.
    await page.locator('#install-disk').fill('');
    await page.locator('#disk-selector').fill('type=nvme');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Saved installDisk, diskSelector.');
    expect(await (await g.api('GET', `/nodes/${mac}`)).json()).toMatchObject({ installDisk: null, diskSelector: { type: 'nvme' } });

    // The config it would receive, masked exactly as the API masks it.
    await page.getByRole('button', { name: 'Preview config' }).click();
    await page.locator('#config-preview').waitFor();
    const preview = await page.locator('#config-preview').textContent();
    expect(preview).toBe(await (await g.api('GET', `/nodes/${mac}/config`)).text());
    expect(preview).toContain('vm.max_map_count');
    // Certificates are public; no private key, plain or base64, is on the page.
    const blobs = [...preview!.matchAll(/[A-Za-z0-9+/=]{100,}/g)].map((m) => Buffer.from(m[0], 'base64').toString('latin1'));
    expect(blobs.length).toBeGreaterThan(0);
    for (const text of [preview!, ...blobs]) expect(text).not.toContain('PRIVATE KEY');

    // Search, counts, sort.
    expect(await page.locator('#summary').textContent()).toMatch(/\b\d+ assigned\b.*\b\d+ worker\b/);
    const before = await page.locator('#fleet tbody tr').count();
    expect(before).toBeGreaterThan(1);
    await page.locator('#search').fill('rack1');
    await expect.poll(() => page.locator('#fleet tbody tr').count()).toBe(1);
    expect(await page.locator('#count').textContent()).toMatch(/, 1 shown\)$/);
    await page.locator('#search').fill('');
    await expect.poll(() => page.locator('#fleet tbody tr').count()).toBe(before);
    const hostnames = async () => (await page.locator('#fleet tbody tr td:nth-child(2)').allTextContents());
    await page.getByRole('button', { name: 'Hostname' }).click();
    expect(await page.locator('th[aria-sort]').getAttribute('aria-sort')).toBe('ascending');
    const up = await hostnames();
    expect(up).toEqual([...up].sort((a, b) => a.localeCompare(b)));
    await page.getByRole('button', { name: 'Hostname' }).click();
    expect(await page.locator('th[aria-sort]').getAttribute('aria-sort')).toBe('descending');
    expect(await hostnames()).toEqual([...up].reverse());

    // The permalink opens the same machine in a new tab.
    const other = await context.newPage();
    await other.goto(`${g.url}/#node=${mac}`);
    await expect.poll(() => other.locator('#node-title').textContent()).toBe(`nuc-21 (${mac})`);
    expect(await other.locator('#install-disk').inputValue()).toBe('');
    expect(await other.locator('#disk-selector').inputValue()).toBe('type=nvme');
    await other.close();

    // A machine held back wears a badge with the reason.
    const held = '52:54:00:0b:00:22';
    await g.api('PUT', `/nodes/${held}`, { role: 'worker', talosVersion: 'v1.13.0' });
    await bootFrom('127.0.11.22', held);
    await expect.poll(() => page.locator(`#fleet tr[data-mac="${held}"] .badge`).textContent()).toBe('needs assets');
    await expect.poll(() => page.locator('#summary').textContent()).toMatch(/need(s)? attention$/);

    // Mark installed, then delete.
    await page.getByRole('button', { name: 'Mark installed' }).click();
    await expect.poll(() => row.locator('td.state').textContent()).toBe('installed');
    await expect.poll(() => page.getByRole('button', { name: 'Mark installed' }).isHidden()).toBe(true);
    await page.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.count()).toBe(0);
    expect(await page.locator('#node').isHidden()).toBe(true);
    expect((await g.api('GET', `/nodes/${mac}`)).status).toBe(404);

    // On a phone the machine opens above the fleet, and timeline reasons are text, not hover titles.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator(`#fleet tr[data-mac="${held}"] td.mac a`).click();
    await expect.poll(() => page.locator('#timeline .reason').first().textContent()).toMatch(/^waiting for the Talos v1\.13\.0 amd64 kernel/);
    expect(await page.locator('#timeline .reason').first().isVisible()).toBe(true);
    const nodeTop = (await page.locator('#node').boundingBox())!.y;
    expect(nodeTop).toBeLessThan((await page.locator('#fleet-card').boundingBox())!.y);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-node-phone.png'), fullPage: true });

    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it('fields the fleet file sets are read-only, with where to change them; the rest stays editable', async () => {
    const mac = '52:54:00:0b:00:f1';
    const fleet = `apiVersion: genesis.dev/v1alpha1\nkind: Fleet\nmachines:\n  - mac: ${mac}\n    role: worker\n    hostname: nuc-f1\n`;
    expect((await g.api('POST', '/fleet/apply', { documents: ['fleet.yaml'], files: { 'fleet.yaml': fleet } })).status).toBe(200);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await login(page, TEST_TOKEN);
    await page.goto(`${g.url}/#node=${mac}`);
    await expect.poll(() => page.locator('#node-title').textContent()).toBe(`nuc-f1 (${mac})`);
    expect(await page.locator('#fleet-note').textContent()).toBe('Set by the fleet file (api): hostname, role. Change them there; the rest is editable here.');
    expect(await page.locator('#role').isDisabled()).toBe(true);
    expect(await page.locator('#hostname').isDisabled()).toBe(true);
    expect(await page.locator('#hostname').getAttribute('title')).toBe('Set by the fleet file (api); change it there.');
    // The rest saves as before (the unchanged role and host name go along and are no change).
    await page.locator('#settings summary').click();
    expect(await page.locator('#labels').isDisabled()).toBe(false);
    await page.locator('#labels').fill('zone=rack9');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Saved labels.');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect.poll(() => page.locator('#node-message').textContent()).toBe('Saved: worker, nuc-f1.');
    expect(await (await g.api('GET', `/nodes/${mac}`)).json()).toMatchObject({ role: 'worker', hostname: 'nuc-f1', labels: { zone: 'rack9' } });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('does what genesis cluster and genesis backup do: join token, reset, verify a snapshot, recover from one', async () => {
    // A stored snapshot, as the schedule leaves one (its bytes and the metadata beside them).
    const name = 'etcd-homelab-20261201T000000Z';
    const bytes = Buffer.alloc(4096, 7);
    const dir = path.join(g.dataDir, 'backups');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${name}.db`), bytes);
    const record = {
      name, cluster: 'homelab', takenAt: '2026-12-01T00:00:00.000Z', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'),
      etcdIntegrity: 'no-hash', revision: null, source: { mac: '52:54:00:0b:00:31', hostname: 'cp-1', address: '192.0.2.31', talosVersion: 'v1.14.0' }, durationMs: 10, secretsFile: null, secretsSha256: null,
    };
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(record));

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await login(page, TEST_TOKEN);
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');

    // The join token, shown on request.
    await page.getByRole('button', { name: 'Show join token' }).click();
    const { token } = (await (await g.api('GET', '/cluster/join-token')).json()) as { token: string };
    await expect.poll(() => page.locator('#join-token').textContent()).toBe(token);

    // Reset: the cluster's name is the confirmation; a wrong one is the API's refusal, word for word.
    const wrongReset = (await (await g.api('POST', '/cluster/reset', { confirm: 'not-it' })).json()) as { message: string };
    page.once('dialog', (d) => void d.accept('not-it'));
    await page.getByRole('button', { name: 'Reset bootstrap…' }).click();
    await expect.poll(() => page.locator('#cluster-message').textContent()).toBe(wrongReset.message);
    expect(await page.locator('#cluster-message').getAttribute('class')).toBe('error');
    // The right name reaches the lock's own rule: nothing to reset on a cluster never bootstrapped.
    page.once('dialog', (d) => void d.accept('homelab'));
    await page.getByRole('button', { name: 'Reset bootstrap…' }).click();
    await expect.poll(() => page.locator('#cluster-message').textContent()).toBe('the lock is already unclaimed');

    // Verify a snapshot: the page says what the API found.
    const li = page.locator(`#snapshots li[data-name="${name}"]`);
    await li.waitFor();
    await li.getByRole('button', { name: 'Verify' }).click();
    const verified = (await (await g.api('POST', `/backups/${name}/verify`)).json()) as { ok: boolean; problems: string[]; sha256: string };
    await expect.poll(() => page.locator('#backup-message').textContent()).toBe(
      verified.ok ? `${name}: OK (0.0 MiB, sha256 ${verified.sha256.slice(0, 12)}…, etcd hash absent)` : `${name}: DAMAGED: ${verified.problems.join('; ')}`,
    );
    // Recover from it: a wrong confirmation is refused with the API's words; nothing starts.
    const wrongRecover = (await (await g.api('POST', '/cluster/recover', { snapshot: name, confirm: 'not-it' })).json()) as { message: string };
    page.once('dialog', (d) => void d.accept('not-it'));
    await li.getByRole('button', { name: 'Recover from this…' }).click();
    await expect.poll(() => page.locator('#backup-message').textContent()).toBe(wrongRecover.message);
    expect(((await (await g.api('GET', '/cluster')).json()) as { state: string }).state).toBe('unclaimed');

    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('other PXE servers the LAN probe heard are shown at the top, a second Genesis for this cluster first among them', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // With the proxyDHCP off (as here) the probe does not run: its answer's shape is stood in for
    // (test/integration/lan-probe.test.ts gets it from real servers in test namespaces).
    expect(await (await g.api('GET', '/lan')).json()).toEqual({ probing: false, reason: 'the LAN probe runs with the proxyDHCP (dhcp.proxy)', findings: [] });
    const findings = [
      { server: '192.0.2.1', kind: 'proxy-dhcp', bootfile: 'bootx64.efi', nextServer: '192.0.2.1', own: false, genesis: null, severity: 'warn', text: 'another proxyDHCP at 192.0.2.1 answers PXE clients' },
      { server: '192.0.2.2', kind: 'proxy-dhcp', bootfile: 'http://192.0.2.2:8080/boot.ipxe', nextServer: '192.0.2.2', own: false, genesis: { cluster: 'lab', instance: 'x' }, severity: 'fail', text: 'a second Genesis for cluster "lab" answers PXE clients at 192.0.2.2' },
      { server: '192.0.2.9', kind: 'proxy-dhcp', bootfile: 'http://192.0.2.9:8080/boot.ipxe', nextServer: '192.0.2.9', own: true, genesis: null, severity: 'ok', text: "this Genesis's proxyDHCP (192.0.2.9)" },
    ];
    await page.route('**/api/v1/lan', (route) => route.fulfill({ json: { probing: true, probedAt: new Date().toISOString(), findings } }));
    await login(page, TEST_TOKEN);
    const alert = page.getByRole('alert').filter({ hasText: 'Other PXE servers on the LAN' });
    await expect.poll(() => alert.isVisible()).toBe(true);
    expect(await alert.locator('li').allTextContents()).toEqual([findings[1]!.text, findings[0]!.text]);
    expect(await alert.locator('li').first().getAttribute('data-severity')).toBe('fail');
    // Gone once the probe hears no one else.
    await page.route('**/api/v1/lan', (route) => route.fulfill({ json: { probing: true, probedAt: new Date().toISOString(), findings: [findings[2]] } }));
    await page.reload();
    await expect.poll(() => page.locator('#fleet-card').isVisible()).toBe(true);
    expect(await page.locator('#lan').isHidden()).toBe(true);
    await context.close();
  });

  it('every text passes WCAG AA contrast (4.5:1) in the light and the dark theme', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      const context = await browser.newContext({ colorScheme, viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      // The login page, then the app with a machine open, its settings and a held machine's reason.
      await page.goto(g.url);
      await page.locator('#token').waitFor();
      expect(await page.evaluate(contrastFailuresScript(4.5)), `${colorScheme}: login`).toEqual([]);
      await login(page, TEST_TOKEN);
      await expect.poll(() => page.locator('#live').textContent()).toBe('live');
      const held = '52:54:00:0b:00:0c';
      await page.locator(`#fleet tr[data-mac="${held}"] td.mac a`).click();
      await page.locator('#settings summary').click();
      await page.locator('#add summary').click();
      await page.locator(`#fleet tr[data-mac="${held}"]`).hover();
      await expect.poll(() => page.locator('#timeline li').count()).toBeGreaterThan(0);
      const failures = (await page.evaluate(contrastFailuresScript(4.5))) as ContrastFailure[];
      expect(failures, `${colorScheme}: ${JSON.stringify(failures.slice(0, 5))}`).toEqual([]);
      await page.screenshot({ path: path.join(ARTIFACTS, `dashboard-${colorScheme}.png`), fullPage: true });
      await context.close();
    }
  }, 60_000);

  it('a page on another site cannot act with the operator\'s session (SameSite=Strict)', async () => {
    const mac = '52:54:00:0b:00:03';
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
    const target = `${g.url}/api/v1/nodes/${mac}/reinstall`;
    // The "attacker": a page on 127.0.11.9, another site than 127.0.0.1.
    const evil = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><script>fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include' }).finally(() => { document.title = 'sent'; });</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.11.9', resolve));
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await login(page, TEST_TOKEN);
      await expect.poll(() => page.locator('#live').textContent()).toBe('live');
      const refusedBefore = await metric('genesis_http_requests_total', { route: '/api/v1/nodes/:mac/reinstall', status: '401' });
      await page.goto(`http://127.0.11.9:${(evil.address() as AddressInfo).port}/`);
      await expect.poll(() => page.title()).toBe('sent');
      // It reached Genesis, without the cookie: refused, and the node is untouched.
      await until(async () => (await metric('genesis_http_requests_total', { route: '/api/v1/nodes/:mac/reinstall', status: '401' })) === refusedBefore + 1, 'the forged request');
      expect(((await (await g.api('GET', `/nodes/${mac}`)).json()) as { state: string }).state).toBe('assigned');
      await context.close();
    } finally {
      evil.close();
    }
  }, 60_000);
});

describe('dashboard session over HTTP', () => {
  async function session(): Promise<{ cookie: string; csrf: string }> {
    const res = await fetch(`${g.url}/ui/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: TEST_TOKEN }) });
    expect(res.status).toBe(303);
    const setCookie = res.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^genesis_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    const cookie = setCookie.split(';')[0]!;
    const who = await fetch(`${g.url}/ui/session`, { headers: { cookie } });
    return { cookie, csrf: ((await who.json()) as { csrf: string }).csrf };
  }

  it('changes with the cookie need the session\'s CSRF header and the dashboard\'s origin; reads do not', async () => {
    const mac = '52:54:00:0b:00:04';
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
    const { cookie, csrf } = await session();
    const patch = (headers: Record<string, string>) =>
      fetch(`${g.url}/api/v1/nodes/${mac}`, { method: 'PATCH', headers: { cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ hostname: 'w-4' }) });
    expect((await fetch(`${g.url}/api/v1/nodes/${mac}`, { headers: { cookie } })).status).toBe(200);
    expect((await patch({})).status).toBe(403);
    expect((await patch({ 'x-genesis-csrf': 'wrong' })).status).toBe(403);
    expect((await patch({ 'x-genesis-csrf': csrf, origin: 'http://evil.example' })).status).toBe(403);
    const ok = await patch({ 'x-genesis-csrf': csrf, origin: g.url });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { hostname: string }).hostname).toBe('w-4');

    // Logged out: the cookie opens nothing any more.
    expect((await fetch(`${g.url}/ui/logout`, { method: 'POST', headers: { cookie, 'x-genesis-csrf': csrf } })).status).toBe(204);
    expect((await fetch(`${g.url}/api/v1/nodes/${mac}`, { headers: { cookie } })).status).toBe(401);
  });

  it('a login from another origin is refused; repeated wrong tokens are throttled', async () => {
    const cross = await fetch(`${g.url}/ui/login`, { method: 'POST', redirect: 'manual', headers: { origin: 'http://evil.example' }, body: new URLSearchParams({ token: TEST_TOKEN }) });
    expect(cross.status).toBe(403);
    expect(cross.headers.get('set-cookie')).toBeNull();
    const wrong = () => fetch(`${g.url}/ui/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: 'guess' }) });
    const answers: string[] = [];
    for (let i = 0; i < 11; i++) answers.push((await wrong()).headers.get('location')!);
    expect(answers.slice(0, 10).every((l) => l === '/?login=failed')).toBe(true);
    expect(answers[10]).toBe('/?login=throttled');
  });

  it('serves the page with a strict content security policy and no third-party origin', async () => {
    const res = await fetch(`${g.url}/`);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    const js = await (await fetch(`${g.url}/ui/app.js`)).text();
    const css = await (await fetch(`${g.url}/ui/app.css`)).text();
    for (const text of [html, js, css]) expect(text).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
  });
});
