// A machine config with its secrets masked, for operators to review through the API. Keys are
// masked by name wherever they appear (Talos puts key material under `key`, tokens under
// `token`, and secrets in fields ending in `secret`/`Secret`), so a patch that adds such a field
// is masked too. Certificates stay: they are public.

import type { Document } from './documents.ts';

export const REDACTED = '(redacted)';

function isSecretKey(k: string): boolean {
  return k === 'key' || k === 'token' || /secret$/i.test(k) || k === 'bootstraptoken' || k === 'password' || k === 'auth';
}

function redact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = isSecretKey(k) && x !== '' ? REDACTED : redact(x);
    return out;
  }
  return v;
}

export function redactDocuments(docs: Document[]): Document[] {
  return docs.map((d) => redact(d) as Document);
}
