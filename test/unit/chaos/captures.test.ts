import assert from "node:assert/strict";
import { checkCaptures } from "../../chaos/invariants/captures.js";

describe("chaos invariant: captured once or missing", () => {
  const vms = ["ns/a", "ns/b", "ns/c"];

  it("accepts each VM captured once, in whichever round, or missing with a reason", () => {
    const v = checkCaptures({
      wholeRunVms: vms,
      steps: [
        { step: "r1-node-a", round: 1, captured: ["ns/a"] },
        { step: "r2-node-b", round: 2, captured: ["ns/b"] },
      ],
      missing: [{ vm: "ns/c", reason: "NodeNotReady" }],
    });
    assert.deepEqual(v, []);
  });

  it("catches a VM captured by two steps", () => {
    const v = checkCaptures({
      wholeRunVms: vms,
      steps: [
        { step: "r1-node-a", round: 1, captured: ["ns/a", "ns/b"] },
        { step: "r2-node-b", round: 2, captured: ["ns/b", "ns/c"] },
      ],
      missing: [],
    });
    assert.equal(v.length, 1);
    assert.match(v[0]!.detail, /ns\/b captured 2 times/);
  });

  it("catches a VM neither captured nor missing, one missing without a reason, and one both", () => {
    const v = checkCaptures({
      wholeRunVms: vms,
      steps: [{ step: "r1-node-a", round: 1, captured: ["ns/a"] }],
      missing: [{ vm: "ns/a", reason: "Migrated" }, { vm: "ns/b" }],
    });
    assert.deepEqual(
      v.map((x) => x.detail),
      [
        "ns/a captured by r1-node-a and also listed missing (Migrated)",
        "ns/b listed missing without a reason",
        "neither captured nor listed missing: ns/c",
      ],
    );
  });

  it("lets a capped missing list leave out as many VMs as it counts, no more", () => {
    const base = { wholeRunVms: vms, steps: [{ step: "s", round: 1, captured: ["ns/a"] }], missing: [] };
    assert.deepEqual(checkCaptures({ ...base, missingTruncated: 2 }), []);
    assert.equal(checkCaptures({ ...base, missingTruncated: 1 }).length, 1);
  });

  it("ignores VMs that did not exist for the whole run", () => {
    assert.deepEqual(
      checkCaptures({ wholeRunVms: [], steps: [{ step: "s", round: 1, captured: [] }], missing: [] }),
      [],
    );
  });
});
