import assert from "node:assert/strict";
import type { MissingReason } from "../../../src/planning/index.js";
import { MISSING_REASONS, missingReasonMessage } from "../../../src/planning/index.js";
import { ref } from "./fixtures.js";

describe("missingReasonMessage", () => {
  const workload = ref("prod/db-1");

  describe("every reason", () => {
    for (const reason of MISSING_REASONS) {
      it(`${reason}: one line naming the VM and the node`, () => {
        const message = missingReasonMessage(reason, { workload, node: "worker-7", phase: "Succeeded", round: 2 });
        assert.ok(message.includes("prod/db-1"), message);
        assert.ok(!/[\r\n]/.test(message), message);
        assert.ok(message.includes("node worker-7"), message);
      });
      it(`${reason}: reads well without a node`, () => {
        const message = missingReasonMessage(reason, { workload });
        assert.ok(!message.includes("undefined"), message);
        assert.ok(message.includes("prod/db-1"), message);
      });
    }
  });

  const specific: Array<[MissingReason, Parameters<typeof missingReasonMessage>[1], RegExp]> = [
    ["NotFound", { workload, node: "n1" }, /^VM prod\/db-1 no longer exists \(last seen on node n1\)$/],
    ["NotFound", { workload }, /^VM prod\/db-1 no longer exists$/],
    ["NotRunning", { workload, phase: "Succeeded" }, /is not running \(phase Succeeded\)$/],
    ["NotRunning", { workload, phase: "Failed", node: "n1" }, /is not running \(phase Failed, on node n1\)$/],
    ["NotRunning", { workload }, /is not running \(phase unknown\)/],
    ["Migrating", { workload, node: "n1", round: 2 }, /live-migrating away from node n1.*in round 2/],
    ["NodeNotReady", { workload, node: "n1" }, /node n1, which is not Ready/],
    ["NodeFailed", { workload, node: "n1", round: 1 }, /the work on node n1 failed in round 1/],
    ["NodeSkipped", { workload, node: "cp" }, /control-plane node cp.*controlPlaneNode Skip/],
    ["NoSharedDisk", { workload }, /^VM prod\/db-1 has neither a disk on the shared volume nor a claim/],
    [
      "NoSharedDisk",
      { workload, node: "n1" },
      /^VM prod\/db-1 on node n1 has neither a disk on the shared volume nor a claim/,
    ],
    [
      "ClaimNotBound",
      { workload, node: "n1", detail: 'claim "d" is Pending' },
      /^VM prod\/db-1 on node n1 has a claim that is not Bound, so it was not captured; a later backup can capture it once it is: claim "d" is Pending$/,
    ],
    ["ClaimInOtherNamespace", { workload }, /a backup of another namespace cannot mount/],
    ["CaptureFailed", { workload, node: "n1" }, /capturing VM prod\/db-1 on node n1 failed/],
  ];
  for (const [reason, ctx, want] of specific) {
    it(`${reason} with ${Object.keys(ctx).join(", ")}`, () => assert.match(missingReasonMessage(reason, ctx), want));
  }

  it("appends a detail after a colon", () => {
    const message = missingReasonMessage("CaptureFailed", { workload, node: "n1", detail: "qemu-img exited 1" });
    assert.match(message, /failed: qemu-img exited 1$/);
  });

  it("flattens a multi-line detail onto one line", () => {
    const message = missingReasonMessage("NodeFailed", { workload, detail: "line one\n  line two\r\nline three" });
    assert.match(message, /: line one line two line three$/);
  });

  it("caps very long messages at 1024 characters", () => {
    const message = missingReasonMessage("CaptureFailed", { workload, detail: "x".repeat(5000) });
    assert.equal(message.length, 1024);
    assert.ok(message.endsWith("..."));
  });

  it("never cuts a surrogate pair in half", () => {
    const message = missingReasonMessage("CaptureFailed", { workload, detail: "😀".repeat(2000) });
    assert.ok(message.length <= 1024 * 2);
    assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(message), "lone high surrogate");
  });

  it("mentions a previous reason only when it differs", () => {
    assert.match(
      missingReasonMessage("NotRunning", { workload, previousReason: "Migrating" }),
      /\(previous round: Migrating\)$/,
    );
    assert.doesNotMatch(missingReasonMessage("NotRunning", { workload, previousReason: "NotRunning" }), /previous/);
  });
});
