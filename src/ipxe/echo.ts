// What a machine's boot loader prints about it, shared by the U-Boot scripts and the GRUB
// configs (both loaders expand $ and split at quotes, ';' and whitespace inside an `echo`).
// Pure: plain values in, text out.

import type { BootPlan } from './plan.ts';
import { holdReason } from './plan.ts';

/** Free text inside a double-quoted `echo`: anything outside a plain set becomes '?'. */
export function echoText(value: string): string {
  return value.replace(/[^A-Za-z0-9 ._:/=+,@()<>-]/g, '?').replace(/\s+/g, ' ').trim();
}

/** "host (mac)" or the MAC alone; `mac` is already a checked word. */
export function whoText(mac: string, hostname?: string | null): string {
  return hostname ? `${echoText(hostname)} (${mac})` : mac;
}

/** The `echo` line of a machine that waits or cannot boot, for U-Boot and GRUB alike. */
export function holdEcho(plan: Extract<BootPlan, { kind: 'wait' | 'unsupported' }>, mac: string, who: string): string {
  if (plan.kind === 'unsupported') return `echo "Genesis: cannot boot ${who}: ${echoText(plan.reason)}"`;
  const why = holdReason(plan) ?? `recorded, no role yet: genesis nodes assign ${mac} worker`;
  return `echo "Genesis: ${who}: ${echoText(why.slice(0, 200))}"`;
}
