// The alerting rules shipped in deploy/prometheus: Prometheus's promtool checks them and runs
// their unit tests (test/fixtures/prometheus), and a running Genesis is scraped to show that the
// series and label values they select are the ones it exports, so a renamed metric or route fails
// here rather than leaving an alert that can never fire.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { samples } from '../../bench/prometheus-text.ts';
import { nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { commandMissing } from '../helpers/host-tools.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RULES = path.join(ROOT, 'deploy/prometheus/genesis-alerts.yaml');
const RULE_TESTS = path.join(ROOT, 'test/fixtures/prometheus/genesis-alerts.test.yaml');

type Rule = { alert: string; expr: string };
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

describe.skipIf(commandMissing(['promtool']))('deploy/prometheus/genesis-alerts.yaml', () => {
  it('is valid rules to promtool', () => {
    const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('fires each alert on the series that should raise it, and on none beside it (promtool test rules)', () => {
    const r = spawnSync('promtool', ['test', 'rules', path.basename(RULE_TESTS)], { cwd: path.dirname(RULE_TESTS), encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    // Every alert has a test of its own.
    const tested = readFileSync(RULE_TESTS, 'utf8');
    for (const rule of rules) expect(tested, rule.alert).toContain(`alertname: ${rule.alert}`);
  });

  describe('against what Genesis exports', () => {
    let g: TestGenesis;
    let text: string;
    beforeAll(async () => {
      g = await startGenesis();
      const mac = '52:54:00:00:0f:01';
      expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
      // The boot path's three routes, each once.
      expect((await fetch(`${g.url}/boot.ipxe`)).status).toBe(200);
      const script = await (await fetch(nodeScriptUrl(g.url, mac))).text();
      expect((await fetch(/ talos\.config=(\S+)/.exec(script)![1]!)).status).toBe(200);
      text = await (await fetch(`${g.url}/metrics`)).text();
    });
    afterAll(() => g.close());

    it('exports every genesis_ metric the rules name', () => {
      const named = new Set(rules.flatMap((r) => r.expr.match(/genesis_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
      expect(named.size).toBeGreaterThanOrEqual(5);
      // The backup age is absent before the first snapshot (so absent() can alert), but declared.
      for (const name of named) expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    });

    it('labels the boot path routes, TFTP outcomes, config results and conflicts as the rules select them, the counters present at 0 from the start', () => {
      const slow = rules.find((r) => r.alert === 'GenesisBootPathSlow')!.expr;
      // PromQL's =~ matches the whole value, as this anchored RegExp does (\\ in the PromQL string is one \).
      const selects = new RegExp(`^(?:${/route=~"([^"]+)"/.exec(slow)![1]!.replaceAll('\\\\', '\\')})$`);
      const timed = samples(text)
        .filter((s) => s.name === 'genesis_http_request_duration_seconds_count' && s.labels.method === 'GET' && s.value === 1)
        .map((s) => s.labels.route!);
      expect(timed.sort()).toEqual(['/boot.ipxe', '/ipxe/node', '/talos/config/:mac/:token']);
      for (const route of timed) expect(route, route).toMatch(selects);
      // The cloud-init profile's user-data and meta-data, the same step on its path.
      expect('/cloud-init/:mac/:token/:file').toMatch(selects);
      for (const other of ['/assets/*', '/api/v1/nodes/:mac', '/healthz', '/boot.ipxeX']) expect(other).not.toMatch(selects);
      for (const outcome of ['timeout', 'read-error']) expect(text).toContain(`genesis_tftp_transfers_total{outcome="${outcome}"} 0`);
      expect(text).toContain('genesis_machine_configs_total{result="failed"} 0');
      // Counted with increase(): present at 0 before the first, or Prometheus never sees it rise.
      for (const [protocol, reason] of [['boot', 'conflict'], ['config', 'conflict'], ['config', 'other-address']]) expect(text).toContain(`genesis_refused_total{protocol="${protocol}",reason="${reason}"} 0`);
    });
  });
});
