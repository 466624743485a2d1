// Every run ends in a terminal phase within a bound.
import { isFinished } from "../../../src/api/phases.js";
import { violation, type Violation } from "./violation.js";

export interface RunEnd {
  /** `FederatedBackup/<name>` or `WorkloadRestore/<name>`. */
  run: string;
  phase?: string;
  /** From its creation to its terminal phase, or to when the wait gave up. */
  elapsedMs: number;
}

export function checkTerminal(runs: readonly RunEnd[], boundMs: number): Violation[] {
  const out: Violation[] = [];
  for (const r of runs) {
    if (!isFinished(r.phase))
      out.push(
        violation("terminal-within-bound", `${r.run} is ${r.phase ?? "without a phase"} after ${r.elapsedMs} ms`),
      );
    else if (r.elapsedMs > boundMs)
      out.push(
        violation("terminal-within-bound", `${r.run} took ${r.elapsedMs} ms to reach ${r.phase}, over ${boundMs} ms`),
      );
  }
  return out;
}
