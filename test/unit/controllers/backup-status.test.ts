import assert from "node:assert/strict";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import {
  buildStatus,
  keepNodes,
  MISSING_LIMIT,
  NODES_DONE_LIMIT,
  NODES_NOT_DONE_LIMIT,
} from "../../../src/controllers/federatedbackup/status.js";
import type { FederatedBackupStatusNode } from "../../../src/api/v1alpha1/index.js";
import type { StepWithPhase } from "../../../src/controllers/federatedbackup/missing.js";

const backup: FederatedBackup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "vms", uid: "3f0c6f0e-1111-2222-3333-444455556666", generation: 1 },
  spec: {
    sharedVolume: { claimName: "vmdisks", nodeMountPath: "/var/lib/vmdisks" },
    location: { persistentVolumeClaim: { claimName: "backups" } },
  },
};

function vm(i: number, node: string) {
  return {
    namespace: `tenant-${i % 50}`,
    name: `vm-${String(i).padStart(5, "0")}-database-server`,
    uid: `uid-${i}`,
    phase: "Running",
    node,
    migrating: false,
    critical: false,
    priority: 0,
    files: [`tenant-${i % 50}/vm-${i}/disk0.qcow2`],
  };
}

/** 1,000 nodes, 10,000 VMs, every step finished; `lost` VMs per node were not captured. */
function bigRun(lost: number): StepWithPhase[] {
  const steps: StepWithPhase[] = [];
  for (let n = 0; n < 1000; n++) {
    const node = `worker-node-${String(n).padStart(4, "0")}.rack-${n % 40}.example.internal`;
    const vms = Array.from({ length: 10 }, (_, k) => vm(n * 10 + k, node));
    const step = buildNodeSnapshot(backup, 1, n + 1, node, vms);
    step.status = {
      phase: "Succeeded",
      startTime: "2026-11-25T01:00:00Z",
      completionTime: "2026-11-25T01:00:09Z",
      captured: vms.slice(lost).map((v) => ({
        namespace: v.namespace,
        name: v.name,
        bytes: 10737418240,
        files: 1,
        indication: "GuestAgent",
        freezeWindowMs: 12,
        manifest: `vms/nightly/${v.namespace}/${v.name}/manifest.json`,
      })),
      failed: vms.slice(0, lost).map((v) => ({
        namespace: v.namespace,
        name: v.name,
        reason: "Migrated",
        message: `now active on node ${node}`,
      })),
    };
    steps.push({ step, derived: { phase: "Succeeded" } });
  }
  return steps;
}

describe("FederatedBackup status size", () => {
  for (const lost of [0, 1]) {
    it(`stays under 256 KiB with 1,000 nodes and 10,000 VMs (${lost ? "1,000 missing" : "all captured"})`, () => {
      const status = buildStatus(
        backup,
        bigRun(lost),
        { phase: lost ? "PartiallyFailed" : "Completed", round: 1, progressing: { reason: "Finished", message: "" } },
        "2026-11-25T01:10:00Z",
      );
      const bytes = Buffer.byteLength(JSON.stringify(status));
      assert.ok(bytes < 256 * 1024, `status is ${bytes} bytes`);
      assert.equal(status.progress?.workloadsExpected, 10_000);
      assert.equal(status.progress?.workloadsCaptured, 10_000 - lost * 1000);
      assert.equal(status.nodes?.length, NODES_DONE_LIMIT);
      assert.equal(status.nodesTruncated, 1000 - NODES_DONE_LIMIT);
      assert.equal(status.nodes?.at(-1)?.order, 1000, "the latest steps are kept");
      assert.ok(bytes < 32 * 1024, `status is ${bytes} bytes (the missing list is most of it)`);
      assert.equal(status.missing?.length, lost ? MISSING_LIMIT : 0);
      assert.equal(status.missingTruncated, lost ? 1000 - MISSING_LIMIT : undefined);
      console.log(`      status: ${(bytes / 1024).toFixed(1)} KiB`);
    });
  }
});

describe("FederatedBackup status: the node steps listed", () => {
  const node = (order: number, phase: FederatedBackupStatusNode["phase"]): FederatedBackupStatusNode => ({
    name: `node-${order}`,
    order,
    round: 1,
    phase,
  });
  const orders = (nodes: FederatedBackupStatusNode[]) => nodes.map((n) => n.order);

  it("lists every step of a small run", () => {
    const nodes = [node(1, "Succeeded"), node(2, "Failed"), node(3, "Running"), node(4, "Pending")];
    assert.deepEqual(keepNodes(nodes), nodes);
  });

  it("lists the running and the next pending steps, then the latest done, in processing order", () => {
    const nodes = Array.from({ length: 1000 }, (_, i) =>
      node(i + 1, i < 500 ? (i % 100 === 7 ? "Failed" : "Succeeded") : i < 503 ? "Running" : "Pending"),
    );
    const kept = keepNodes(nodes);
    assert.deepEqual(orders(kept), [
      ...Array.from({ length: NODES_DONE_LIMIT }, (_, i) => 491 + i),
      ...Array.from({ length: NODES_NOT_DONE_LIMIT }, (_, i) => 501 + i),
    ]);
    assert.deepEqual(
      kept.filter((n) => n.phase === "Running").map((n) => n.order),
      [501, 502, 503],
    );
  });

  it("keeps a running step listed even behind more pending steps than the limit", () => {
    // A look-ahead step may run before steps earlier in the order (a retried node, a later round).
    const nodes = [
      ...Array.from({ length: 2 * NODES_NOT_DONE_LIMIT }, (_, i) => node(i + 1, "Pending")),
      node(2 * NODES_NOT_DONE_LIMIT + 1, "Running"),
    ];
    const kept = keepNodes(nodes);
    assert.equal(kept.length, NODES_NOT_DONE_LIMIT);
    assert.equal(kept.at(-1)?.phase, "Running");
    assert.deepEqual(orders(kept).slice(0, 3), [1, 2, 3]);
  });

  it("counts the steps left out in nodesTruncated", () => {
    const steps = bigRun(0).slice(0, 300);
    steps.forEach((s, i) => {
      if (i >= 100) s.derived = { phase: "Pending" };
    });
    const status = buildStatus(
      backup,
      steps,
      { phase: "InProgress", round: 1, progressing: { reason: "NodeInProgress", message: "" } },
      "2026-11-25T01:10:00Z",
    );
    assert.equal(status.nodes?.length, NODES_DONE_LIMIT + NODES_NOT_DONE_LIMIT);
    assert.equal(status.nodesTruncated, 300 - NODES_DONE_LIMIT - NODES_NOT_DONE_LIMIT);
    assert.equal(status.progress?.nodesTotal, 300);
    assert.equal(status.progress?.nodesCompleted, 100);
  });
});
