// The docs match the code: every command (its help, as printed), every API route and every link
// between README.md and docs/ is checked here; every setting is checked in test/unit/config.test.ts
// against the schema table. And what docs/operations.md tells an operator to do works.

import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withReference } from '../../scripts/cli-reference.ts';
import { usages } from '../../src/cli/main.ts';
import { commandTable } from '../../src/cli/completion.ts';
import { startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { serverRoutes } from '../helpers/routes.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCS = path.join(ROOT, 'docs');
const docFiles = () => [path.join(ROOT, 'README.md'), ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS, f))];
const read = (f: string) => readFileSync(f, 'utf8');
const allDocs = () => docFiles().map(read).join('\n');

/** GitHub's anchors for a Markdown file's headings (outside code fences), duplicates numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const m = !fence && /^#{1,6} (.+)$/.exec(line);
    if (!m) continue;
    const base = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

describe('links', () => {
  it('every relative link in README.md and docs/ points at a file that exists, and at a heading in it', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of docFiles()) {
      const text = read(file).replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue;
        checked++;
        const [rel, anchor] = target!.split('#') as [string, string | undefined];
        const dest = rel ? path.resolve(path.dirname(file), rel) : file;
        let ok: boolean;
        try {
          ok = !anchor || !dest.endsWith('.md') || anchors(read(dest)).has(anchor);
          if (!rel.endsWith('/')) read(dest);
        } catch {
          ok = rel.endsWith('/') && readdirSync(dest).length > 0;
        }
        if (!ok) broken.push(`${path.relative(ROOT, file)}: ${target}`);
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(broken).toEqual([]);
  });

  it('every file in docs/ is in the README\'s map', () => {
    const readme = read(path.join(ROOT, 'README.md'));
    for (const f of readdirSync(DOCS).filter((n) => n.endsWith('.md'))) expect(readme, f).toContain(`(docs/${f})`);
  });
});

describe('commands', () => {
  it('docs/cli.md carries every command\'s help as the command prints it (node scripts/cli-reference.ts)', () => {
    const doc = read(path.join(DOCS, 'cli.md'));
    expect(withReference(doc)).toBe(doc);
  });

  it('every command and subcommand is in docs/cli.md', () => {
    const doc = read(path.join(DOCS, 'cli.md'));
    for (const [name, entry] of Object.entries(commandTable(usages()))) {
      expect(doc, name).toContain(`## genesis ${name}\n`);
      for (const sub of entry.subcommands) expect(doc, `${name} ${sub}`).toMatch(new RegExp(`genesis ${name}[^\\n]*\\n[\\s\\S]*?\\b${sub}\\b`));
    }
  });
});

describe('API routes', () => {
  let g: TestGenesis;
  beforeAll(async () => {
    g = await startGenesis();
  });
  afterAll(async () => {
    await g?.close();
  });

  it('every route the server has is documented as "METHOD /path" in the docs', () => {
    const text = allDocs();
    const routes = serverRoutes(g.app.http!.printRoutes({ commonPrefix: false }));
    expect(routes.size).toBeGreaterThan(30);
    const missing: string[] = [];
    // Swagger UI's own files under /api/v1/docs/ are the browsable page, documented as a whole.
    for (const r of [...routes.keys()].filter((p) => p.startsWith('/api/v1/docs/'))) routes.delete(r);
    for (const [route, methods] of routes) {
      // A wildcard route is documented by its prefix: GET /assets/<path>, GET /talos/config/<mac>/<token>.
      const shown = route.replace(/\{\*\}$/, '');
      for (const m of methods) if (!text.includes(`${m} ${shown}`)) missing.push(`${m} ${route}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('docs/operations.md', () => {
  it('a data dir copied from a stopped Genesis serves the same machines, secrets and token on another host', async () => {
    const old = mkdtempSync(path.join(tmpdir(), 'genesis-old-host-'));
    const first = await startGenesis({ GENESIS_API_TOKEN: '' }, { dataDir: path.join(old, 'data'), generateSecrets: true });
    const mac = '52:54:00:0d:00:01';
    const token = read(path.join(first.dataDir, 'admin.token')).trim();
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`${first.url}/api/v1/nodes/${mac}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'controlplane', hostname: 'cp-1' }) })).status).toBe(201);
    const secrets = read(path.join(first.dataDir, 'secrets.yaml'));
    await first.close();
    // "Stop Genesis on the old host and copy the data dir."
    const moved = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-moved-')), 'data');
    cpSync(first.dataDir, moved, { recursive: true });
    const second = await startGenesis({ GENESIS_API_TOKEN: '' }, { dataDir: moved, generateSecrets: true });
    try {
      const node = await fetch(`${second.url}/api/v1/nodes/${mac}`, { headers: auth });
      expect(node.status).toBe(200);
      expect(await node.json()).toMatchObject({ role: 'controlplane', hostname: 'cp-1' });
      expect(read(path.join(moved, 'secrets.yaml'))).toBe(secrets);
      expect((await fetch(`${second.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status).toBe(401);
    } finally {
      await second.close();
    }
  });
});
