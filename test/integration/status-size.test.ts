// The FederatedBackup as etcd stores it (with its managedFields) while a 1,000-node run progresses: the
// status the operator writes stays a few KiB whatever the run's size (federatedbackup/status.ts), and
// writing it often does not grow the object (runtime/objects.ts replaceStatus).
import assert from "node:assert/strict";
import type { FederatedBackup, FederatedBackupStatusPhase } from "../../src/api/v1alpha1/index.js";
import { buildNodeSnapshot } from "../../src/controllers/federatedbackup/builders.js";
import type { StepWithPhase } from "../../src/controllers/federatedbackup/missing.js";
import { buildStatus } from "../../src/controllers/federatedbackup/status.js";
import { replaceStatus } from "../../src/controllers/runtime/objects.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { adminClient, backupManifest } from "./operator-env.js";
import { freshNamespace } from "./setup.js";

/** 1,000 node steps of 10 VMs each, the first `done` of them Succeeded and the next one Running. */
function run(backup: FederatedBackup, done: number): StepWithPhase[] {
  return Array.from({ length: 1000 }, (_, n) => {
    const node = `worker-node-${String(n).padStart(4, "0")}.rack-${n % 40}.example.internal`;
    const vms = Array.from({ length: 10 }, (_, k) => ({
      namespace: `tenant-${(n * 10 + k) % 50}`,
      name: `vm-${String(n * 10 + k).padStart(5, "0")}-database-server`,
      uid: `uid-${n * 10 + k}`,
      phase: "Running",
      node,
      migrating: false,
      critical: false,
      priority: 0,
      files: [`tenant-${k}/vm-${n * 10 + k}/disk0.qcow2`],
    }));
    const step = buildNodeSnapshot(backup, 1, n + 1, node, vms);
    const phase = n < done ? "Succeeded" : n === done ? "Running" : "Pending";
    step.status = {
      phase,
      ...(n <= done ? { startTime: "2026-11-25T01:00:00Z" } : {}),
      ...(n < done
        ? {
            completionTime: "2026-11-25T01:00:09Z",
            captured: vms.map((v) => ({ namespace: v.namespace, name: v.name, bytes: 1 << 30, files: 1 })),
          }
        : {}),
    };
    return { step, derived: { phase } };
  });
}

describe("FederatedBackup stored size at 1,000 nodes", function () {
  this.timeout(120_000);

  it("stays under 32 KiB with its managedFields, written at every tenth node of the run", async () => {
    const client = adminClient();
    const namespace = await freshNamespace("status-size");
    let backup = await client.create<FederatedBackup & KubeObject>(
      Resources.FederatedBackup,
      backupManifest(namespace, "big"),
    );
    const sizes: number[] = [];
    for (let done = 0; done <= 1000; done += 10) {
      const phase: FederatedBackupStatusPhase = done === 1000 ? "Completed" : "InProgress";
      const status = buildStatus(
        backup,
        run(backup, done),
        { phase, round: 1, progressing: { reason: "NodeInProgress", message: `node ${done + 1}` } },
        "2026-11-25T01:10:00Z",
      );
      backup = await replaceStatus(client, Resources.FederatedBackup, backup, status);
      const stored = await client.get<FederatedBackup & KubeObject>(Resources.FederatedBackup, namespace, "big");
      sizes.push(Buffer.byteLength(JSON.stringify(stored)));
      assert.equal(stored.status?.progress?.nodesCompleted, done);
    }
    const largest = Math.max(...sizes);
    console.log(
      `      stored object: ${(sizes[0]! / 1024).toFixed(1)} KiB at the start, at most ${(largest / 1024).toFixed(1)} KiB`,
    );
    assert.ok(largest < 32 * 1024, `the stored FederatedBackup reached ${largest} bytes`);
    // The last writes are no larger than the first ones: nothing accumulates write after write.
    assert.ok(sizes.at(-2)! <= sizes[1]! + 1024, `grew from ${sizes[1]} to ${sizes.at(-2)} bytes`);
    // Each update was sent without managedFields (as a cache's copy is): the API server kept them, the
    // create's entry (spec) beside the status writes' one, rather than taking the absence for an empty list.
    const stored = await client.get<FederatedBackup & KubeObject>(Resources.FederatedBackup, namespace, "big");
    const entries = (stored.metadata.managedFields ?? []) as Array<{ operation?: string; subresource?: string }>;
    assert.ok(
      entries.some((e) => !e.subresource) &&
        entries.some((e) => e.subresource === "status" && e.operation === "Update"),
      JSON.stringify(entries),
    );
    await client.delete(Resources.FederatedBackup, namespace, "big");
  });
});
