// Fault injection for the crash tests: with GENESIS_FAILPOINT=<name> (read once, by the wiring in
// app.ts), the process kills itself with SIGKILL when it reaches that point, exactly as a power
// cut or OOM kill would stop it. No effect, and no cost beyond a string compare, when unset.

export const FAILPOINTS = ['after-elect', 'after-recover-upload', 'after-mark-sent', 'after-bootstrap-rpc'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export type Failpoints = (name: Failpoint) => void;

/** The failpoints armed by `armed` (the variable's value): reaching that one kills this process. */
export function failpointsFrom(armed: string | undefined): Failpoints {
  if (!armed) return () => {};
  return (name) => {
    if (armed === name) process.kill(process.pid, 'SIGKILL');
  };
}
