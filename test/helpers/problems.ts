// The problems a call throws, for checks that report every problem at once (fleet files,
// profiles, templates): the error's `problems`, or a failure when it throws nothing or else.

export function problemsOf<P>(fn: () => unknown, kind: new (...args: never[]) => Error & { problems: P[] }): P[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof kind) return err.problems;
    throw err;
  }
  throw new Error(`expected a ${kind.name}`);
}
