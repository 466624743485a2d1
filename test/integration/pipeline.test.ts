// Pipelined node steps (spec.pipeline): with a look-ahead of 2, the next nodes' agent pods are running while the
// current node still holds the cut, and they wait for their turn; a node hands the cut on as soon as its Reflink
// clones are made and its VMs thawed, and extracts after that; never do two nodes hold the cut at once.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { backupFilePath } from "../../src/storage/layout.js";
import { FREEZE_DELAY_ANNOTATION } from "../harness/kubevirt-double.js";
import { createVm, diskPaths, type VmFixture } from "../harness/workloads.js";
import { xfsImage } from "../harness/xfs.js";
import { BackupObserver } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  kubevirtDouble,
  podRunner,
  startOperator,
} from "./operator-env.js";

type Pod = KubeObject & { spec?: { nodeName?: string }; status?: { phase?: string } };

const MiB = 1024 * 1024;
// node-a first (three VMs), then node-b, then node-c (the planner orders by VM count).
const VMS: VmFixture[] = [
  { name: "a1", node: "node-a", disks: [16 * MiB] },
  { name: "a2", node: "node-a", disks: [16 * MiB] },
  { name: "a3", node: "node-a", disks: [16 * MiB] },
  { name: "b1", node: "node-b", disks: [16 * MiB] },
  { name: "b2", node: "node-b", disks: [16 * MiB] },
  { name: "c1", node: "node-c", disks: [16 * MiB] },
];

describe("Pipelined node steps", function () {
  this.timeout(180_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("runs the next nodes' pods during a node's cut, hands the cut on before extracting, never two cuts at once", async function () {
    const xfs = xfsImage();
    if (typeof xfs === "string") {
      console.log(`      (skipped: ${xfs})`);
      this.skip();
    }
    const env = await backupEnv("pipe");
    mkdirSync(env.shared.hostDir, { recursive: true });
    const unmount = xfs.mount(env.shared.hostDir);
    const observer = new BackupObserver([env.namespace]);
    await observer.start();
    // When each agent pod was first seen Running, by node.
    const podRunning = new Map<string, number>();
    const pods = new Informer<Pod>(adminClient(), Resources.Pod, { namespace: env.namespace }, { warn: () => {} });
    pods.on((_event, pod) => {
      const node = pod.spec?.nodeName;
      if (node && pod.status?.phase === "Running" && !podRunning.has(node)) podRunning.set(node, Date.now());
    });
    await pods.start();
    const operator = await startOperator();
    try {
      for (const vm of VMS) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      // Each of node-a's freezes lasts a second, so that its cut is long enough to see the others wait.
      for (const vm of VMS.filter((v) => v.node === "node-a")) {
        await adminClient().patch(Resources.VirtualMachineInstance, env.namespace, vm.name, {
          metadata: { annotations: { [FREEZE_DELAY_ANNOTATION]: "1000" } },
        });
      }
      const double = await kubevirtDouble();
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "piped", {
          snapshot: { method: "Reflink" },
          pipeline: { lookAhead: 2, maxExtractions: 2 },
        }),
      );
      const fb = await backupFinished(env.namespace, "piped");
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
      assert.equal(fb.status?.progress?.workloadsCaptured, VMS.length);

      const steps = (
        await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
          namespace: env.namespace,
          labelSelector: "fedbackup.io/backup=piped",
        })
      ).items.sort((a, b) => a.spec.order - b.spec.order);
      assert.deepEqual(
        steps.map((s) => s.spec.node),
        ["node-a", "node-b", "node-c"],
      );
      const cutAt = (s: NodeSnapshot) => Date.parse(s.status?.cutCompletionTime ?? "");
      for (const s of steps) assert.ok(cutAt(s) > 0, `${s.spec.node} reported its cut`);

      // Look-ahead: node-b's and node-c's pods were running before node-a had made its cut.
      for (const node of ["node-b", "node-c"]) {
        const running = podRunning.get(node);
        assert.ok(
          running !== undefined && running < cutAt(steps[0]!),
          `${node}'s pod ran before node-a's cut was made`,
        );
      }

      // One cut at a time, in order: each node's freeze window (first freeze to last thaw) ends before the
      // next node's begins, and all freezes are thawed.
      const calls = double.callsFor(env.namespace).filter((c) => c.status === 200);
      const windows = steps.map((s) => {
        const mine = calls.filter((c) => c.node === s.spec.node);
        const freezes = mine.filter((c) => c.op === "freeze");
        const thaws = mine.filter((c) => c.op === "unfreeze");
        assert.equal(thaws.length, freezes.length, `every freeze on ${s.spec.node} was thawed`);
        return {
          node: s.spec.node!,
          from: Math.min(...freezes.map((c) => c.at)),
          to: Math.max(...thaws.map((c) => c.at)),
        };
      });
      for (let i = 1; i < windows.length; i++) {
        assert.ok(
          windows[i - 1]!.to <= windows[i]!.from,
          `${windows[i - 1]!.node}'s cut (${JSON.stringify(windows[i - 1])}) ended before ${windows[i]!.node}'s began (${JSON.stringify(windows[i])})`,
        );
      }

      // The hand-off: node-b froze while node-a's Job was still running (node-a was extracting).
      const jobA = observer.jobs.find((j) => j.node === "node-a")!;
      assert.ok(
        jobA.finishedAt !== undefined && windows[1]!.from < jobA.finishedAt,
        "node-b cut while node-a extracted",
      );

      // And what was extracted after the hand-off is the data of the cut, byte for byte.
      const backupDir = path.join(env.location.hostDir, fb.status?.backupPath ?? "");
      for (const vm of VMS) {
        for (const rel of diskPaths(env.namespace, vm)) {
          const source = readFileSync(path.join(env.shared.hostDir, rel));
          const copy = readFileSync(path.join(backupDir, backupFilePath(env.namespace, vm.name, rel)));
          assert.ok(source.equals(copy), `${rel} differs`);
        }
      }
    } finally {
      await operator.stop();
      await pods.stop();
      await observer.stop();
      unmount();
      xfs.cleanup();
      env.cleanup();
    }
  });
});
