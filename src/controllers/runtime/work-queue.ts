// A per-key serialized work queue in the style of client-go's: a key is processed by one worker at a
// time; adding a key that is being processed marks it dirty so it runs once more afterwards (never
// twice at once, never lost). Failures are retried with per-key exponential backoff; terminal errors
// are not retried (the reconciler reported them in a condition).

export interface ReconcileResult {
  /** Run this key again after this many milliseconds even if nothing changes (e.g. to renew a Lease). */
  requeueAfterMs?: number;
}

/** An error that retrying cannot fix: log it, do not requeue. */
export class TerminalError extends Error {
  override name = "TerminalError";
}

export interface WorkQueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, err: unknown, retryInMs: number | undefined) => void;
  /**
   * Keys are collected but not worked on until start(): the workers of a controller must not run before
   * the caches they read have their first lists, or they decide on a partial view of the cluster.
   */
  paused?: boolean;
  /** Told of depth, adds, waits and retries (the controller's work-queue metrics). */
  hooks?: {
    depth(waiting: number): void;
    added(): void;
    waited(seconds: number): void;
    retried(): void;
  };
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Queued key → when it was added (for the wait a worker's take reports). */
  private readonly queued = new Map<string, number>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly idleWaiters: Array<() => void> = [];
  private running = 0;
  private stopped = false;
  private paused: boolean;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly reconcile: (key: string) => Promise<ReconcileResult | void>,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 2;
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.paused = options.paused ?? false;
  }

  /** Lets the workers take the keys collected while the queue was paused. */
  start(): void {
    this.paused = false;
    this.pump();
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.set(key, Date.now());
    this.queue.push(key);
    this.options.hooks?.added();
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const due = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { timer, due });
  }

  get length(): number {
    return this.queue.length + this.running;
  }

  /** Resolves when nothing is queued or running (delayed keys not counted). */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    await this.idle();
  }

  private pump(): void {
    while (!this.paused && this.running < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.options.hooks?.waited((Date.now() - this.queued.get(key)!) / 1000);
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
    this.options.hooks?.depth(this.queue.length);
    if (this.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      if (err instanceof TerminalError) {
        this.failures.delete(key);
        this.options.onError?.(key, err, undefined);
      } else {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min(this.baseDelayMs * 2 ** (n - 1), this.maxDelayMs);
        this.options.onError?.(key, err, delay);
        this.options.hooks?.retried();
        this.addAfter(key, delay);
      }
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
