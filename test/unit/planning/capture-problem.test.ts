import assert from "node:assert/strict";
import { captureProblem, planDiscovery, planReconcileRound, workloadKey } from "../../../src/planning/index.js";
import { node, vm } from "./fixtures.js";

const claim = { volume: "root", claimName: "db-root", sourceKind: "DataVolume" as const, volumeMode: "Block" as const };

describe("captureProblem", () => {
  it("a VM with only claims is capturable; with neither files nor claims it is NoSharedDisk", () => {
    assert.equal(captureProblem(vm("ns/a", { node: "n1", files: [], claims: [claim] })), undefined);
    assert.equal(captureProblem(vm("ns/a", { node: "n1", files: ["ns/a/d.img"] })), undefined);
    assert.deepEqual(captureProblem(vm("ns/a", { node: "n1", files: [], claims: [] })), { reason: "NoSharedDisk" });
  });

  it("checks files before claims before emptiness", () => {
    const fileProblem = { reason: "SharedFile" as const, detail: "ns/x.img is also ns/b's" };
    const claimProblem = { reason: "ClaimNotBound" as const, detail: 'claim "db-root" is Pending' };
    assert.deepEqual(captureProblem(vm("ns/a", { node: "n1", files: [], fileProblem, claimProblem })), fileProblem);
    assert.deepEqual(captureProblem(vm("ns/a", { node: "n1", files: [], claimProblem })), claimProblem);
  });

  it("discovery and the verification rounds leave a VM out for its claim problem, with the detail", () => {
    const claimProblem = { reason: "ClaimNotFound" as const, detail: 'volume "root" names claim "gone"' };
    const workloads = [
      vm("ns/a", { node: "n1", files: [], claimProblem }),
      vm("ns/b", { node: "n1", files: [], claims: [claim] }),
    ];
    const plan = planDiscovery(workloads, [node("n1")], { policy: "WorkloadCount" });
    assert.deepEqual(
      plan.steps.map((s) => s.workloads.map(workloadKey)),
      [["ns/b"]],
    );
    assert.equal(plan.unplaced[0]?.reason, "ClaimNotFound");
    assert.match(
      plan.unplaced[0].message,
      /names a claim that does not exist, so it was not captured: volume "root" names claim "gone"/,
    );

    const round = planReconcileRound(
      [{ workload: { namespace: "ns", name: "a" }, previousReason: "NodeFailed" }],
      workloads,
      [node("n1")],
      { policy: "WorkloadCount" },
      2,
    );
    assert.equal(round.unresolved[0]?.reason, "ClaimNotFound");
  });
});
