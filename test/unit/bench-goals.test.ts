// The goals table `npm run bench` prints (bench/goals-table.ts): which figure meets which goal.
// The benches themselves are scripts with no thresholds; this checks only the judging.

import { describe, expect, it } from 'vitest';
import { formatTable, GOALS, judge } from '../../bench/goals-table.ts';
import type { BenchResult } from '../../bench/results.ts';

/** Figures that meet every goal, as the benches record them. */
const meeting: BenchResult[] = [
  { bench: 'storm-200', figures: { machines: 200, done: 200, wall_ratio: 1.3, peak_rss_mb: 140, pss_at_peak_mb: 112.4 } },
  { bench: 'storm-1000', figures: { machines: 1000, done: 1000, wall_ratio: 1.0, listen_overflows: 0, bootipxe_p95_ms: 150, peer_bootipxe_p95_ms: 600, probe_bootipxe_p95_ms: 20, peer_probe_bootipxe_p95_ms: 6, probe_bootipxe_p99_ms: 430, peer_probe_bootipxe_p99_ms: 17, server_bootipxe_p95_ms: 1.02 } },
  { bench: 'assets', figures: { ratio_10: 0.8, ratio_50: 1.0, bootipxe_p99_ms: 4.2, nginx_bootipxe_p99_ms: 40 } },
  { bench: 'install-script-rate', figures: { scripts_per_s: 6000, cycles_per_s: 2500 } },
  { bench: 'asset-lookup', figures: { ratio: 1.05 } },
  { bench: 'tftp', figures: { ratio_to_tftpd_hpa: 0.55 } },
  { bench: 'idle-memory', figures: { idle_mb: 95, settled_mb: 90, settle_s: 300 } },
];

const row = (rows: ReturnType<typeof judge>, measure: string) => rows.find((r) => r.measure.startsWith(measure))!;

describe('the goals table', () => {
  it('marks every goal met when every figure is within it; the 1000-machine wall ratio, the prober, Genesis\'s own timing and the storm\'s Pss have no goal', () => {
    const rows = judge(meeting);
    expect(rows).toHaveLength(GOALS.length);
    expect(rows.filter((r) => r.met === true)).toHaveLength(GOALS.length - 5);
    expect(row(rows, "1000-machine storm: `boot.ipxe` p95 by Genesis's own histogram")).toMatchObject({ figure: '1.0 ms', goal: '', met: undefined });
    expect(row(rows, '200-machine storm: the same, shared pages counted once')).toMatchObject({ figure: '112 MB', goal: '', met: undefined });
    expect(row(rows, '1000-machine storm: wall time').met).toBeUndefined();
    expect(row(rows, '1000-machine storm: wall time').figure).toBe('1.00×');
    expect(row(rows, '1000-machine storm: `boot.ipxe` p99 for a quiet prober')).toMatchObject({ figure: '430 ms (nginx 17 ms in the same run)', goal: '', met: undefined });
  });

  it('marks a goal missed on the side its limit points: a ceiling exceeded, a floor not reached', () => {
    const worse = meeting.map((r) =>
      r.bench === 'idle-memory' ? { ...r, figures: { idle_mb: 118 } } : r.bench === 'install-script-rate' ? { ...r, figures: { scripts_per_s: 4999, cycles_per_s: 2000 } } : r,
    );
    const rows = judge(worse);
    expect(row(rows, 'idle RSS')).toMatchObject({ figure: '118 MB', goal: '≤ 100 MB', met: false });
    expect(row(rows, 'install scripts')).toMatchObject({ figure: '4999/s', met: false });
    // On the limit is within it.
    expect(row(rows, 'script-and-config')).toMatchObject({ figure: '2000/s', met: true });
  });

  it('counts machines a storm did not finish, and shows the peer in the same run beside a latency', () => {
    const partial = meeting.map((r) => (r.bench === 'storm-1000' ? { ...r, figures: { ...r.figures, done: 997 } } : r));
    const rows = judge(partial);
    expect(row(rows, '1000-machine storm: machines not done')).toMatchObject({ figure: '3', goal: 'none', met: false });
    expect(row(rows, '1000-machine storm: `boot.ipxe` p95').figure).toBe('150 ms (nginx 600 ms in the same run)');
    expect(row(rows, '`GET /boot.ipxe` p99').figure).toBe('4.2 ms (nginx 40 ms in the same run)');
  });

  it("says how late the simulator's own loop ran beside the machines' boot.ipxe p95", () => {
    const withLoop = meeting.map((r) => (r.bench === 'storm-1000' ? { ...r, figures: { ...r.figures, client_loop_delay_p95_ms: 120, peer_client_loop_delay_p95_ms: 95 } } : r));
    expect(row(judge(withLoop), '1000-machine storm: `boot.ipxe` p95').figure).toBe("150 ms (nginx 600 ms in the same run; the simulator's loop late by 120 ms p95 (95 ms with nginx))");
  });

  it("says the same client's /boot.ipxe rate beside the two absolute rates, and is judged on the rate alone", () => {
    const slowHour = meeting.map((r) => (r.bench === 'install-script-rate' ? { ...r, figures: { scripts_per_s: 2400, cycles_per_s: 1100, bootipxe_per_s: 4300 } } : r));
    const rows = judge(slowHour);
    expect(row(rows, 'install scripts')).toMatchObject({ figure: '2400/s (`/boot.ipxe`, no write, 4300/s with the same client)', met: false });
    expect(row(rows, 'script-and-config')).toMatchObject({ figure: '1100/s (`/boot.ipxe`, no write, 4300/s with the same client)', met: false });
    expect(row(judge(meeting), 'install scripts').figure).toBe('6000/s');
  });

  it("says the idle reference server's reading in the same storm beside the prober's", () => {
    const withReference = meeting.map((r) => (r.bench === 'storm-1000' ? { ...r, figures: { ...r.figures, reference_probe_bootipxe_p95_ms: 6.4, reference_probe_bootipxe_p99_ms: 11 } } : r));
    const rows = judge(withReference);
    expect(row(rows, '1000-machine storm: `boot.ipxe` p95 for a quiet prober').figure).toBe('20 ms (nginx 6.0 ms in the same run; an idle reference server 6.4 ms in the same storm)');
    expect(row(rows, '1000-machine storm: `boot.ipxe` p99 for a quiet prober').figure).toBe('430 ms (nginx 17 ms in the same run; an idle reference server 11 ms in the same storm)');
  });

  it("says the idle reference server's p99 under the same load beside Genesis's", () => {
    const withReference = meeting.map((r) => (r.bench === 'assets' ? { ...r, figures: { ...r.figures, bootipxe_p99_ms: 8.1, reference_bootipxe_p99_ms: 7.9 } } : r));
    expect(row(judge(withReference), '`GET /boot.ipxe` p99')).toMatchObject({ figure: '8.1 ms (nginx 40 ms in the same run; an idle reference server 7.9 ms in the same load)', met: false });
  });

  it('says why a figure is missing: a bench not run, one that failed, a figure it could not take', () => {
    const some = meeting.filter((r) => r.bench !== 'tftp' && r.bench !== 'asset-lookup');
    const noNstat = some.map((r) => (r.bench === 'storm-1000' ? { ...r, figures: { ...r.figures, listen_overflows: undefined } } : r));
    const rows = judge(noNstat, new Map([['tftp', 'the bench exited 1']]));
    expect(row(rows, 'TFTP')).toMatchObject({ figure: 'no figure (the bench exited 1)', met: undefined });
    expect(row(rows, 'asset GET')).toMatchObject({ figure: 'no figure (not run)', met: undefined });
    expect(row(rows, '1000-machine storm: listen-queue')).toMatchObject({ figure: 'no figure (not measured)', met: undefined });
  });

  it('judges the latest run of a bench that ran twice', () => {
    const rows = judge([...meeting, { bench: 'idle-memory', figures: { idle_mb: 120 } }]);
    expect(row(rows, 'idle RSS').met).toBe(false);
  });

  it('prints one Markdown row per goal, with its mark', () => {
    const table = formatTable(judge(meeting)).split('\n');
    expect(table[0]).toBe('| measure | figure | goal | |');
    expect(table).toHaveLength(GOALS.length + 2);
    expect(table).toContain('| idle RSS, 5 s after start | 95 MB | ≤ 100 MB | ✔ |');
    expect(table).toContain('| idle RSS once settled | 90 MB (300 s after start) | ≤ 100 MB | ✔ |');
  });
});
