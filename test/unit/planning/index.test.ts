import assert from "node:assert/strict";
import * as planning from "../../../src/planning/index.js";

describe("src/planning/index.ts", () => {
  const functions = [
    "activeNodeOf",
    "orderNodes",
    "planDiscovery",
    "planReconcileRound",
    "missingReasonMessage",
    "nextRoundDecision",
    "finalPhase",
    "stepName",
    "countRecentFailures",
    "workloadKey",
    "fnv1a32",
    "seedFromText",
  ];
  for (const name of functions) {
    it(`exports ${name}`, () => assert.equal(typeof (planning as Record<string, unknown>)[name], "function"));
  }

  it("workloadKey is namespace/name", () => {
    assert.equal(planning.workloadKey({ namespace: "ns", name: "vm" }), "ns/vm");
  });

  it("MISSING_REASONS lists every reason once", () => {
    assert.deepEqual([...planning.MISSING_REASONS].sort(), [
      "CaptureFailed",
      "ClaimInOtherNamespace",
      "ClaimNotBound",
      "ClaimNotFound",
      "InvalidVolume",
      "Migrating",
      "NoSharedDisk",
      "NodeFailed",
      "NodeNotReady",
      "NodeSkipped",
      "NotFound",
      "NotRunning",
      "ReflinkNotSupported",
      "SharedFile",
      "UnsafeFile",
      "VolumeSnapshotClassNotFound",
    ]);
  });
});
