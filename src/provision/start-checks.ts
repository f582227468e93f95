// What must hold before Genesis answers anyone, checked once at start so a broken setting stops it
// with one line instead of failing every node's install later: the patch files parse, the secrets
// copy's passphrase file can be used, and a config renders for each role. Without a cluster
// endpoint nothing can render yet: the preflight says so (machines wait); it is not a stop.

import { PassphraseError, readPassphraseFile } from '../backup/secrets-envelope.ts';
import { blankNode } from '../domain/node.ts';
import { RenderError } from '../talos/render.ts';
import type { ConfigRenderer } from './config-renderer.ts';
import { PATCH_SLOTS, type PatchFileSet } from './patch-files.ts';

/** `warnings`: what does not stop the start but keeps some machines waiting, for the log. */
export type StartCheck = { problem: string } | { ok: true; warnings: string[] };

export function checkBeforeServing(o: { patchFiles: PatchFileSet; renderer: ConfigRenderer; passphraseFile: string; endpointSet: boolean }): StartCheck {
  for (const slot of PATCH_SLOTS) {
    const problem = o.patchFiles.slot(slot)?.error;
    if (problem) return { problem: `invalid configuration: ${problem.message}` };
  }
  // The secrets copy beside each snapshot: a passphrase file that cannot be used stops the start
  // now, not the first backup a day later.
  if (o.passphraseFile) {
    try {
      readPassphraseFile(o.passphraseFile);
    } catch (err) {
      if (err instanceof PassphraseError) return { problem: `invalid configuration: ${err.message}` };
      throw err;
    }
  }
  // Without an endpoint nothing renders yet, and machines wait: the preflight (doctor's
  // cluster-endpoint check) says so once, with its fix, so this adds no second line.
  if (!o.endpointSet) return { ok: true, warnings: [] };
  const sample = blankNode('02:00:00:00:00:00');
  const warnings: string[] = [];
  for (const role of ['controlplane', 'worker'] as const) {
    try {
      o.renderer.render(sample, { role });
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      // A cluster of control planes only uses such patches as they are: workers are what wait.
      // Its problems alone: the label names the sample machine the check rendered, no real one.
      if (err.controlPlaneOnly) warnings.push(`${role} machines wait: ${err.problems.join('; ')}`);
      else return { problem: `invalid configuration: ${role} machine config: ${err.message}` };
    }
  }
  return { ok: true, warnings };
}
