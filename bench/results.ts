// A bench's figures as one JSON line, for `bench/goals.ts` (npm run bench), which runs the benches
// one after another and judges their figures against issue 19's goals. Written only when
// GENESIS_BENCH_RESULTS names a file (goals.ts sets it); a bench run by hand just prints.

import { appendFileSync } from 'node:fs';

/** One figure per name; undefined when the run could not measure it. */
export type Figures = Record<string, number | undefined>;

export type BenchResult = { bench: string; figures: Figures };

/** The middle value (the upper one of the two middles for an even count). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function recordFigures(bench: string, figures: Figures): void {
  const file = process.env.GENESIS_BENCH_RESULTS;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ bench, figures } satisfies BenchResult)}\n`);
}
