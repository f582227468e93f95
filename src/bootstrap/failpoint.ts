// Fault injection for the crash tests: with GENESIS_FAILPOINT=<name>, the process kills itself
// with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it. No
// effect (and no cost beyond a string compare) when the variable is unset.

export const FAILPOINTS = ['after-elect', 'after-recover-upload', 'after-mark-sent', 'after-bootstrap-rpc'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

const armed = process.env.GENESIS_FAILPOINT;

export function failpoint(name: Failpoint): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
}
