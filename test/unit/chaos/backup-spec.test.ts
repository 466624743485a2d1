import assert from "node:assert/strict";
import { chaosBackupSpec } from "../../chaos/backup-spec.js";

describe("chaos backup spec", () => {
  it("pipelines with Reflink on XFS", () => {
    assert.deepEqual(chaosBackupSpec(true, false), {
      pipeline: { lookAhead: 2, maxExtractions: 2 },
      snapshot: { method: "Reflink" },
    });
  });

  it("keeps Copy, pipelined, for a scenario that needs the copy under the freeze (Auto would pick Reflink on XFS)", () => {
    assert.deepEqual(chaosBackupSpec(true, true), {
      pipeline: { lookAhead: 2, maxExtractions: 2 },
      snapshot: { method: "Copy" },
    });
  });

  it("asks for nothing without XFS, as before", () => {
    assert.deepEqual(chaosBackupSpec(false, false), {});
    assert.deepEqual(chaosBackupSpec(false, true), {});
  });
});
