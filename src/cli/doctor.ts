// `genesis doctor`: checks this host and configuration for what keeps machines from booting, and
// says how to fix each. Exit 1 when something fails (warnings alone exit 0).

import { parseCommand } from './args.ts';
import { formatted, OUTPUT_HELP, OUTPUT_OPTIONS, outputFormatOf } from './output.ts';
import { loadConfigWithFleet } from './fleet-config.ts';
import { detectAdvertiseAddr } from '../config/network.ts';
import { runChecks, type CheckResult } from '../doctor/checks.ts';
import { gatherFacts } from '../doctor/gather.ts';

export const DOCTOR_USAGE = `Usage: genesis doctor [-o table|json|yaml] [--config <file>]

Checks: ports (HTTP, TFTP, proxyDHCP) free and bindable, advertise_addr on this host and not
ambiguous, not under Docker Desktop, iPXE binaries and Talos assets present, data dir writable,
clock plausible; with dhcp.proxy, other PXE servers on the LAN (a second Genesis for this cluster
fails). Exit 1 if any check fails.

Options:
${OUTPUT_HELP}
  --config <file>  Configuration file (default: ./genesis.yaml when present)
`;

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

export function formatResults(results: CheckResult[]): string {
  return (
    results
      .map((r) => [`${MARK[r.status]}  ${r.title}`, ...(r.detail ? [`      ${r.detail}`] : []), ...(r.fix ? [`      fix: ${r.fix}`] : [])].join('\n'))
      .join('\n') + '\n'
  );
}

export async function doctorCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(argv, { ...OUTPUT_OPTIONS, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, DOCTOR_USAGE, 'doctor');
  if (!parsed) return 2;
  if (parsed.values.help) {
    out(DOCTOR_USAGE);
    return 0;
  }
  const format = outputFormatOf(parsed.values, 'doctor');
  if (!format) return 2;
  let auto = false;
  // "auto" finding nothing is itself a finding here, not a reason to stop.
  // The configuration serve runs with: the fleet file's cluster settings count (a broken file is the fleet check's finding).
  const { config } = loadConfigWithFleet({ file: parsed.values.config, detect: () => ((auto = true), detectAdvertiseAddr() ?? '0.0.0.0'), discover: true }, 'ignore');
  // The LAN probe sends one DHCP DISCOVER: only where Genesis already speaks DHCP (its proxyDHCP).
  const lan = config.dhcp.proxy && config.dhcp.lan_probe_interval > 0;
  const results = runChecks(await gatherFacts(config, { advertiseAuto: auto, ports: true, lan }));
  out(formatted(format, { results }, () => formatResults(results)));
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
