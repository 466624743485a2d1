// How many Events of one kind an object gets. A run over 1,000 nodes would otherwise write two Events per
// node step (NodeStarted, NodeSucceeded): a third of its API requests, thousands of objects in etcd for an
// hour, and a `kubectl describe` nobody can read. Like client-go's event aggregation (similar Events of one
// object are combined after the first ten), every (object, type, reason) may write `burst` Events, then one
// per `refillMs`; the next one written says how many were left out since. One reason cannot use up
// another's budget, so a run's single Completed or Failed is always written. The per-node record is the
// NodeSnapshot, which is never left out.

export interface EventBudgetSettings {
  /** Events of one (object, type, reason) written before any is left out. */
  burst: number;
  /** After the burst, one more may be written each time this much has passed. */
  refillMs: number;
  /** Kinds remembered at most; the ones idle longest are forgotten first (their budget starts full again). */
  maxKinds: number;
}

export const EVENT_BUDGET_DEFAULTS: EventBudgetSettings = { burst: 10, refillMs: 30_000, maxKinds: 4096 };

interface Bucket {
  tokens: number;
  refilledAt: number;
  leftOut: number;
  leftOutSince?: number;
}

export type EventVerdict = { write: false } | { write: true; leftOut?: { count: number; since: number } };

export class EventBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly settings: EventBudgetSettings = EVENT_BUDGET_DEFAULTS) {}

  /** Whether an Event of this kind is written now, and how many of its kind were left out before it. */
  take(kind: { object: string; type: string; reason: string }, now: number): EventVerdict {
    const key = `${kind.object} ${kind.type} ${kind.reason}`;
    const { burst, refillMs } = this.settings;
    const bucket = this.buckets.get(key) ?? { tokens: burst, refilledAt: now, leftOut: 0 };
    // Map order is insertion order: re-inserting keeps the kinds ordered by last use.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    const refills = Math.floor(Math.max(0, now - bucket.refilledAt) / refillMs);
    if (refills > 0) {
      bucket.tokens = Math.min(burst, bucket.tokens + refills);
      bucket.refilledAt = bucket.tokens === burst ? now : bucket.refilledAt + refills * refillMs;
    }
    this.forgetOldest();
    if (bucket.tokens < 1) {
      bucket.leftOut += 1;
      bucket.leftOutSince ??= now;
      return { write: false };
    }
    bucket.tokens -= 1;
    if (bucket.leftOut === 0) return { write: true };
    const leftOut = { count: bucket.leftOut, since: bucket.leftOutSince! };
    bucket.leftOut = 0;
    delete bucket.leftOutSince;
    return { write: true, leftOut };
  }

  private forgetOldest(): void {
    while (this.buckets.size > this.settings.maxKinds) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) return;
      this.buckets.delete(oldest);
    }
  }
}
