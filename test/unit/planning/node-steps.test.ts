import assert from "node:assert/strict";
import { groupIntoSteps, toCandidate } from "../../../src/planning/index.js";
import { keys, node, vm } from "./fixtures.js";

describe("toCandidate", () => {
  it("counts the VMs, the critical ones and the highest priority", () => {
    const workloads = [
      vm("ns/a", { critical: true, priority: 3 }),
      vm("ns/b", { priority: 9 }),
      vm("ns/c", { critical: true, priority: -1 }),
    ];
    const n = node("n1", { freeCpuMilli: 250, freeMemoryBytes: 512, recentFailures: 4, controlPlane: true });
    assert.deepEqual(toCandidate("n1", workloads, n), {
      name: "n1",
      workloads: 3,
      critical: 2,
      maxPriority: 9,
      freeCpuMilli: 250,
      freeMemoryBytes: 512,
      recentFailures: 4,
      controlPlane: true,
    });
  });

  it("keeps negative priorities", () => {
    assert.equal(
      toCandidate("n1", [vm("ns/a", { priority: -5 }), vm("ns/b", { priority: -2 })], node("n1")).maxPriority,
      -2,
    );
  });

  it("uses 0 and worker for a node without figures, and 0 priority for no VMs", () => {
    assert.deepEqual(toCandidate("n1", [], undefined), {
      name: "n1",
      workloads: 0,
      critical: 0,
      maxPriority: 0,
      freeCpuMilli: 0,
      freeMemoryBytes: 0,
      recentFailures: 0,
      controlPlane: false,
    });
  });
});

describe("groupIntoSteps", () => {
  it("separates not-Ready, unknown and skipped nodes from the steps", () => {
    const a = vm("ns/a", { node: "ok" });
    const b = vm("ns/b", { node: "down" });
    const c = vm("ns/c", { node: "ghost" });
    const d = vm("ns/d", { node: "cp" });
    const { steps, rejected } = groupIntoSteps(
      [a, b, c, d].map((w) => ({ workload: w, node: w.node ?? "" })),
      [node("ok"), node("down", { ready: false }), node("cp", { controlPlane: true })],
      { policy: "WorkloadCount", controlPlaneNode: "Skip" },
    );
    assert.deepEqual(
      steps.map((s) => [s.node, s.order, keys(s.workloads)]),
      [["ok", 1, ["ns/a"]]],
    );
    assert.deepEqual(rejected, [
      { workload: b, node: "down", reason: "NodeNotReady" },
      { workload: c, node: "ghost", reason: "NodeNotReady", detail: "the Node object was not found" },
      { workload: d, node: "cp", reason: "NodeSkipped" },
    ]);
  });
});
