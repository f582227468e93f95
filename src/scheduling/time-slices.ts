// The costly part of a boot request (an install script's turn: its record, its config rendered
// and checked; a served config's decision; U-Boot's and GRUB's per-machine files over TFTP) runs
// here, a slice of the event loop at a time, instead of in the handler that parsed it. One
// instance serves HTTP and TFTP alike (made in app.ts). Once a turn of the loop can take many
// connections at once (http/accept-sockets.ts), hundreds of those requests become readable in one poll phase; run as they
// are parsed, a `GET /boot.ipxe`, an asset's route decision or a TFTP request that arrived with
// them waited for all of them. Here the poll phase only queues them: it answers the cheap requests
// of the batch at once, and the queued work then runs in the check phase, first come first served,
// until a slice's time is used up; the rest waits for the next turn, after the next poll. In the
// 1000-machine storm the two together took the prober's `boot.ipxe` p95 from 161–383 to 57–184 ms;
// the sockets alone to 119–301 ms (docs/performance.md).
//
// Every part that runs in one slice writes in the same shared transaction
// (InventoryDatabase.writeShared), so a slice is still one commit.
//
// Pure scheduling: the clock and the "after the next poll" hook are injected, so tests drive it
// without an event loop.

export type TimeSlicesOptions = {
  /** How long one slice may run queued work before the event loop polls again, in ms. */
  sliceMs: number;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Runs `fn` in the event loop's next check phase (setImmediate), after the poll phase. */
  later?: (fn: () => void) => void;
};

type Queued = { run: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void };

export class TimeSlices {
  /** Parts in arrival order; the ones already run are cleared to undefined until the queue is trimmed. */
  private readonly queue: Array<Queued | undefined> = [];
  /** Where the queue's unrun parts start (shifting a long array at each part would cost O(n)). */
  private head = 0;
  private scheduled = false;
  private readonly sliceMs: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void) => void;

  constructor(opts: TimeSlicesOptions) {
    this.sliceMs = opts.sliceMs;
    this.now = opts.now ?? (() => performance.now());
    this.later = opts.later ?? ((fn) => setImmediate(fn));
  }

  /** Parts waiting for a slice. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /**
   * `fn` in a later slice, in arrival order; settles with what it returns (a promise it returns
   * is followed) or what it throws. Its synchronous part is what the slice's time counts.
   */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.later(() => this.slice());
  }

  /**
   * Runs the parts queued before it began until the slice's time is spent (at least one), then
   * yields to the next poll; a part queued meanwhile waits for a later turn like any other.
   */
  private slice(): void {
    this.scheduled = false;
    const started = this.now();
    const end = this.queue.length;
    do {
      const part = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      try {
        part.resolve(part.run());
      } catch (error) {
        part.reject(error);
      }
    } while (this.head < end && this.now() - started < this.sliceMs);
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      return;
    }
    // A queue that never empties (a steady stream) drops its run part now and then.
    if (this.head >= 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.schedule();
  }
}
