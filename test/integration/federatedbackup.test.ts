import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { createVm, diskPaths, NODE_MOUNT_PATH, type VmFixture } from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";

type Backup = FederatedBackup & KubeObject;
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

function backupManifest(env: BackupEnv, name: string, spec: Partial<FederatedBackup["spec"]> = {}): Backup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: env.namespace },
    spec: {
      sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env.location.claimName } },
      ...spec,
    },
  };
}

async function waitForPhase(namespace: string, name: string, timeoutMs = 120_000): Promise<Backup> {
  return waitFor(`FederatedBackup ${namespace}/${name} to finish`, timeoutMs, async () => {
    const fb = await adminClient().get<Backup>(Resources.FederatedBackup, namespace, name);
    return FINISHED.includes(fb.status?.phase ?? "") ? fb : undefined;
  });
}

async function stepsOf(namespace: string, backup: string): Promise<Array<NodeSnapshot & KubeObject>> {
  const list = await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
    namespace,
    labelSelector: `fedbackup.io/backup=${backup}`,
  });
  return list.items.sort((a, b) => a.spec.round - b.spec.round || a.spec.order - b.spec.order);
}

/** Every captured file at the location equals its source byte for byte. */
function assertFilesMatch(env: BackupEnv, fb: Backup, vms: Array<{ name: string; disks?: number[] }>): void {
  const backupDir = path.join(env.location.hostDir, fb.status!.backupPath!);
  for (const vm of vms) {
    for (const rel of diskPaths(env.namespace, vm)) {
      const source = readFileSync(path.join(env.shared.hostDir, rel));
      const copy = readFileSync(path.join(backupDir, env.namespace, vm.name, "files", rel));
      assert.ok(source.equals(copy), `${rel} differs`);
    }
  }
}

const SEVEN: VmFixture[] = [
  { name: "a1", node: "node-a" },
  { name: "b1", node: "node-b" },
  { name: "b2", node: "node-b" },
  { name: "b3", node: "node-b" },
  { name: "b4", node: "node-b" },
  { name: "c1", node: "node-c" },
  { name: "c2", node: "node-c" },
];

describe("FederatedBackup controller", function () {
  this.timeout(90_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("captures 7 VMs on 3 nodes one node at a time, most VMs first, and verifies every file", async () => {
    const env = await backupEnv("fb-count");
    const observer = new BackupObserver([env.namespace]);
    await observer.start();
    const operator = await startOperator();
    try {
      for (const vm of SEVEN) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      operator.client.stats.reset();
      await adminClient().create(Resources.FederatedBackup, backupManifest(env, "nightly"));
      const fb = await waitForPhase(env.namespace, "nightly");
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 2));
      assert.equal(fb.status?.progress?.workloadsCaptured, 7);
      assert.equal(fb.status?.progress?.workloadsMissing, 0);
      assert.equal(fb.status?.progress?.nodes, "3/3");

      assert.deepEqual(
        observer.jobs.map((j) => j.node),
        ["node-b", "node-c", "node-a"],
      );
      assert.deepEqual(observer.overlaps, []);
      for (const job of observer.jobs)
        assert.deepEqual([...job.leaseHolders].filter(Boolean), [job.node], `lease holder while ${job.name} ran`);
      const steps = await stepsOf(env.namespace, "nightly");
      assert.deepEqual(
        steps.map((s) => [s.spec.node, (s.spec.workloads ?? []).map((w) => w.name)]),
        [
          ["node-b", ["b1", "b2", "b3", "b4"]],
          ["node-c", ["c1", "c2"]],
          ["node-a", ["a1"]],
        ],
      );
      assertFilesMatch(env, fb, SEVEN);
      const double = await kubevirtDouble();
      for (const vm of SEVEN) {
        const calls = double.callsFor(env.namespace, vm.name);
        assert.deepEqual(
          calls.map((c) => [c.op, c.node]),
          [
            ["freeze", vm.node],
            ["unfreeze", vm.node],
          ],
          vm.name,
        );
      }
      console.log(
        `      API requests by the operator for this run: ${operator.client.stats.total} ${JSON.stringify(operator.client.stats.snapshot())}`,
      );
      console.log(`      Job-complete → next Job created (ms): ${observer.handoffs().join(", ")}`);
    } finally {
      await operator.stop();
      await observer.stop();
      env.cleanup();
    }
  });
});
