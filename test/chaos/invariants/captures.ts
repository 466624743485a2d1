// Every VM that existed for the whole run is captured exactly once (in one round, by one step) or named
// missing with a reason; never both.
import { violation, type Violation } from "./violation.js";

/** What one node step reported it captured (VMs as `<namespace>/<name>`). */
export interface StepCaptures {
  step: string;
  round: number;
  captured: string[];
}

export interface MissingVm {
  vm: string;
  reason?: string;
}

export interface CaptureRecord {
  /** The VMs that existed from before the run started until after it finished. */
  wholeRunVms: string[];
  steps: StepCaptures[];
  missing: MissingVm[];
  /** How many more VMs are missing than listed (the status caps its list). */
  missingTruncated?: number;
}

const INVARIANT = "captured-once-or-missing";

export function checkCaptures(record: CaptureRecord): Violation[] {
  const out: Violation[] = [];
  const capturedBy = new Map<string, StepCaptures[]>();
  for (const step of record.steps) {
    for (const vm of new Set(step.captured)) capturedBy.set(vm, [...(capturedBy.get(vm) ?? []), step]);
    const twice = step.captured.filter((vm, i) => step.captured.indexOf(vm) !== i);
    for (const vm of new Set(twice)) out.push(violation(INVARIANT, `${vm} listed twice as captured by ${step.step}`));
  }
  const missing = new Map(record.missing.map((m) => [m.vm, m]));
  let unaccounted = 0;
  for (const vm of record.wholeRunVms) {
    const by = capturedBy.get(vm) ?? [];
    const listedMissing = missing.get(vm);
    if (by.length > 1) {
      out.push(
        violation(
          INVARIANT,
          `${vm} captured ${by.length} times: ${by.map((s) => `${s.step} (round ${s.round})`).join(", ")}`,
        ),
      );
    }
    if (by.length > 0 && listedMissing) {
      out.push(
        violation(
          INVARIANT,
          `${vm} captured by ${by[0]!.step} and also listed missing (${listedMissing.reason ?? "no reason"})`,
        ),
      );
    }
    if (by.length === 0 && !listedMissing) unaccounted++;
    if (by.length === 0 && listedMissing && !listedMissing.reason) {
      out.push(violation(INVARIANT, `${vm} listed missing without a reason`));
    }
  }
  // A capped list cannot name every missing VM: only VMs beyond the count it admits to are unaccounted.
  if (unaccounted > (record.missingTruncated ?? 0)) {
    const names = record.wholeRunVms.filter((vm) => !capturedBy.has(vm) && !missing.has(vm));
    out.push(violation(INVARIANT, `neither captured nor listed missing: ${names.join(", ")}`));
  }
  return out;
}
