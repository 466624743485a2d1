import assert from "node:assert/strict";
import { checkTerminal } from "../../chaos/invariants/terminal.js";

describe("chaos invariant: terminal within a bound", () => {
  it("accepts finished runs within the bound", () => {
    assert.deepEqual(
      checkTerminal(
        [
          { run: "FederatedBackup/a", phase: "Completed", elapsedMs: 10 },
          { run: "WorkloadRestore/b", phase: "Failed", elapsedMs: 100 },
        ],
        100,
      ),
      [],
    );
  });

  it("catches a run still going and one that finished too late", () => {
    const v = checkTerminal(
      [
        { run: "FederatedBackup/a", phase: "Running", elapsedMs: 200 },
        { run: "FederatedBackup/b", phase: "Completed", elapsedMs: 101 },
      ],
      100,
    );
    assert.deepEqual(
      v.map((x) => x.detail),
      ["FederatedBackup/a is Running after 200 ms", "FederatedBackup/b took 101 ms to reach Completed, over 100 ms"],
    );
  });
});
