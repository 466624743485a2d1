// The scale benchmark's arithmetic on what it observed: percentiles, the time between consecutive cuts, the
// operator's reaction times. Pure: every time is epoch milliseconds as the benchmark's watches saw it.

/** The nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface Spread {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function spreadOf(values: readonly number[]): Spread {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : NaN,
  };
}

/** The gaps between consecutive times, in time order: a step's end-to-end time is its cut after the previous one. */
export function gaps(times: readonly number[]): number[] {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.slice(1).map((t, i) => t - sorted[i]!);
}

export interface JobTimes {
  name: string;
  createdAt: number;
  completedAt?: number;
}

/**
 * Operator overhead between Jobs: for each Job created after the one before it (in creation order) had
 * completed, the time from that completion to this creation. Jobs started ahead of the previous one's end
 * (pipelining) have no such gap and are left out; their overhead is the hand-off (handoffDelays).
 */
export function jobGaps(jobs: readonly JobTimes[]): number[] {
  const sorted = [...jobs].sort((a, b) => a.createdAt - b.createdAt);
  const out: number[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const done = sorted[i - 1]!.completedAt;
    if (done !== undefined && done <= sorted[i]!.createdAt) out.push(sorted[i]!.createdAt - done);
  }
  return out;
}

/**
 * Operator overhead with pipelining: from a step's cut being made to the Lease naming the next step. `cuts` by
 * step name; `handoffs` are the times the Lease was seen to name a step (first time per step). With
 * "written", up to the time the operator put in the Lease as it wrote it (what the watch adds is left out).
 */
export function handoffDelays(
  cuts: ReadonlyMap<string, number>,
  handoffs: readonly { step: string; at: number; writtenAt?: number }[],
  until: "seen" | "written" = "seen",
): number[] {
  const ordered = [...handoffs].sort((a, b) => a.at - b.at);
  const out: number[] = [];
  for (let i = 1; i < ordered.length; i++) {
    const cut = cuts.get(ordered[i - 1]!.step);
    const end = until === "seen" ? ordered[i]!.at : ordered[i]!.writtenAt;
    if (cut !== undefined && end !== undefined && cut <= ordered[i]!.at) out.push(Math.max(0, end - cut));
  }
  return out;
}
