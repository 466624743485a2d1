// Never two steps of one storage back end between "turn granted" and "cut done" at once. A step's turn
// begins when its back end's Lease first names it (annotation fedbackup.io/step) and ends when the step
// reports its cut done (status.cutCompletionTime, with pipelining) or, without that, when its agent is gone:
// its Job Complete or Failed (the Job controller says so once no pod of it runs) or the step's record of its
// end, whichever comes first. The record alone would be late evidence: the operator writes it after it has
// seen the Job end, and may hand the turn on before it.
// Times are etcd revisions (the objects' resourceVersions), one clock for Leases and steps alike, so the
// order of two watch streams' deliveries cannot fake or hide an overlap.
import { violation, type Violation } from "./violation.js";

/** One state of a Lease seen by the watch. */
export interface LeaseState {
  lease: string;
  revision: bigint;
  holder?: string;
  step?: string;
}

/** When a step (NodeSnapshot or NodeRestore) was first seen with its cut done, and finished. */
export interface StepEnd {
  step: string;
  cutDoneRevision?: bigint;
  finishedRevision?: bigint;
  /** When the step's Job (named after it) was first seen Complete or Failed. */
  jobEndedRevision?: bigint;
}

const earliest = (...revisions: Array<bigint | undefined>): bigint | undefined =>
  revisions.reduce<bigint | undefined>((a, b) => (b === undefined ? a : a === undefined || b < a ? b : a), undefined);

export interface Turn {
  lease: string;
  step: string;
  holder: string;
  from: bigint;
  /** Undefined: not over when the recording ended. */
  to?: bigint;
}

/** The turn of every step a Lease named, in the order they were granted. */
export function turnsOf(states: readonly LeaseState[], ends: readonly StepEnd[]): Turn[] {
  const endOf = new Map(
    ends.map((e) => [e.step, e.cutDoneRevision ?? earliest(e.jobEndedRevision, e.finishedRevision)]),
  );
  const turns = new Map<string, Turn>();
  for (const s of [...states].sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0))) {
    if (!s.step || !s.holder) continue;
    const key = `${s.lease}\u0000${s.step}`;
    if (turns.has(key)) continue;
    const to = endOf.get(s.step);
    turns.set(key, {
      lease: s.lease,
      step: s.step,
      holder: s.holder,
      from: s.revision,
      ...(to !== undefined ? { to } : {}),
    });
  }
  return [...turns.values()];
}

/** Violations: two turns on one Lease that overlap. */
export function checkOneTurnAtATime(turns: readonly Turn[]): Violation[] {
  const out: Violation[] = [];
  for (let i = 0; i < turns.length; i++) {
    for (let j = i + 1; j < turns.length; j++) {
      const a = turns[i]!;
      const b = turns[j]!;
      if (a.lease !== b.lease) continue;
      const overlap = (a.to === undefined || b.from < a.to) && (b.to === undefined || a.from < b.to);
      if (overlap)
        out.push(
          violation(
            "one-coordinating-node",
            `${a.lease}: ${b.step} (${b.holder}) granted at revision ${b.from} before ${a.step} (${a.holder}, from ${a.from}) had cut (${a.to ?? "never"})`,
          ),
        );
    }
  }
  return out;
}

/**
 * How many turns were granted while the step of an earlier turn on the same Lease had cut but not finished
 * (it was extracting): the pipelined hand-offs the check above had to judge. Zero without pipelining.
 */
export function handOffsDuringExtraction(turns: readonly Turn[], ends: readonly StepEnd[]): number {
  const finishedAt = new Map(ends.map((e) => [e.step, e.finishedRevision]));
  return turns.filter((b) =>
    turns.some((a) => {
      if (a === b || a.lease !== b.lease || a.to === undefined || a.from >= b.from || a.to > b.from) return false;
      const finished = finishedAt.get(a.step);
      return finished === undefined || finished > b.from;
    }),
  ).length;
}
