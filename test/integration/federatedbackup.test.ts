import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { runAgentServiceAccountName } from "../../src/controllers/runtime/agent-access.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { createVm, diskPaths, migrateVm, NODE_MOUNT_PATH, type VmFixture } from "../harness/workloads.js";
import { orderNodes } from "../../src/planning/index.js";
import { FREEZE_DELAY_ANNOTATION } from "../harness/kubevirt-double.js";
import { BackupObserver, type JobRecord } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  csiDouble,
  kubevirtDouble,
  podRunner,
  setNodeReady,
  startOperator,
  startOperatorProcess,
  waitFor,
  type BackupEnv,
  withoutLocationValidations,
} from "./operator-env.js";

type Backup = FederatedBackup & KubeObject;

const waitForPhase = backupFinished;

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

interface RunOptions {
  name?: string;
  spec?: Partial<FederatedBackup["spec"]>;
  vms?: VmFixture[];
  /** Called (once per Job) when a node Job appears or finishes, to change the world mid-run. */
  onJob?: (job: JobRecord, event: "created" | "finished", env: BackupEnv) => Promise<void> | void;
  /** Prepare the namespace before the backup is created. */
  before?: (env: BackupEnv) => Promise<void>;
}

interface RunResult {
  /** API requests the operator made from the backup's creation to its end, by verb and resource. */
  requests: { total: number; byVerb: Record<string, number> };
  env: BackupEnv;
  fb: Backup;
  observer: BackupObserver;
  steps: Array<NodeSnapshot & KubeObject>;
}

/** Runs one backup with its own namespace, volumes and operator, and returns what happened. */
async function runBackup(opts: RunOptions, check: (r: RunResult) => Promise<void> | void): Promise<void> {
  const env = await backupEnv("fb");
  const observer = new BackupObserver([env.namespace], (job, event) => opts.onJob?.(job, event, env));
  await observer.start();
  const operator = await startOperator();
  try {
    const vms = opts.vms ?? SEVEN;
    for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
    await opts.before?.(env);
    operator.client.stats.reset();
    const name = opts.name ?? "nightly";
    await adminClient().create(Resources.FederatedBackup, backupManifest(env, name, opts.spec));
    const fb = await waitForPhase(env.namespace, name);
    const requests = { total: operator.client.stats.total, byVerb: operator.client.stats.snapshot() };
    await check({ requests, env, fb, observer, steps: await stepsOf(env.namespace, name) });
  } finally {
    await operator.stop();
    await observer.stop();
    env.cleanup();
  }
}

async function createFailedStep(env: BackupEnv, backup: string, node: string): Promise<void> {
  const name = `${backup}-r1-${node}`;
  await adminClient().create(Resources.NodeSnapshot, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "NodeSnapshot",
    metadata: {
      name,
      namespace: env.namespace,
      labels: { "app.kubernetes.io/managed-by": "fedbackup", "fedbackup.io/backup": backup },
    },
    spec: {
      backupName: backup,
      backupUID: "00000000-0000-0000-0000-000000000000",
      node,
      round: 1,
      order: 1,
      sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env.location.claimName }, path: backup },
      snapshot: { method: "Copy", quiesce: "None", freezeTimeout: "30s", maxFreeze: "2m" },
      extractAt: "Backup",
      workloads: [],
    },
  } as unknown as KubeObject);
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await adminClient().patch(
    Resources.NodeSnapshot,
    env.namespace,
    name,
    { status: { phase: "Failed", completionTime: now } },
    { subresource: "status" },
  );
}

/** Failed node steps in the whole cluster and recorded NotReady transitions, per node: what FailureRate counts. */
async function failedStepsPerNode(): Promise<Map<string, number>> {
  const steps = await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
    labelSelector: "app.kubernetes.io/managed-by=fedbackup",
  });
  const out = new Map<string, number>();
  for (const s of steps.items) {
    if (s.spec.node && s.status?.phase === "Failed") out.set(s.spec.node, (out.get(s.spec.node) ?? 0) + 1);
  }
  // ...and the NotReady transitions the operator recorded (the node-failure test makes one).
  try {
    const health = await adminClient().get<KubeObject & { data?: Record<string, string> }>(
      Resources.ConfigMap,
      "fedbackup-system",
      "fedbackup-node-health",
    );
    for (const [node, list] of Object.entries(health.data ?? {}))
      out.set(node, (out.get(node) ?? 0) + list.split(",").length);
  } catch {
    // no transition recorded yet
  }
  return out;
}

function capturedCounts(steps: Array<NodeSnapshot & KubeObject>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of steps) for (const c of s.status?.captured ?? []) counts.set(c.name, (counts.get(c.name) ?? 0) + 1);
  return counts;
}

describe("FederatedBackup controller", function () {
  this.timeout(120_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("captures 7 VMs on 3 nodes one node at a time, most VMs first, and verifies every file", async () => {
    await runBackup({}, async ({ requests, env, fb, observer, steps }) => {
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 2));
      assert.equal(fb.status?.progress?.workloadsCaptured, 7);
      assert.equal(fb.status?.progress?.workloadsMissing, 0);
      assert.equal(fb.status?.progress?.nodes, "3/3");
      assert.equal(fb.status?.conditions?.find((c) => c.type === "Verified")?.status, "True");

      assert.deepEqual(
        observer.jobs.map((j) => j.node),
        ["node-b", "node-c", "node-a"],
      );
      assert.deepEqual(observer.overlaps, []);
      for (const job of observer.jobs) {
        assert.deepEqual([...job.leaseHolders].filter(Boolean), [job.node], `lease holder while ${job.name} ran`);
      }
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
        // Each freeze comes from the agent of the VM's own node step, under the run's ServiceAccount.
        const agent = `system:serviceaccount:${env.namespace}:${runAgentServiceAccountName({ name: fb.metadata.name!, uid: fb.metadata.uid! })}`;
        assert.deepEqual(
          calls.map((c) => [c.op, c.node, c.user]),
          [
            ["freeze", vm.node, agent],
            ["unfreeze", vm.node, agent],
          ],
          vm.name,
        );
      }
      console.log(
        `      API requests by the operator for this run: ${requests.total} ${JSON.stringify(requests.byVerb)}`,
      );
      console.log(`      Job-complete → next Job created (ms): ${observer.handoffs().join(", ")}`);
    });
  });

  it("end to end: 8 VMs with several MB of disks on 3 nodes, every file at the location equal to its source [long]", async () => {
    const MiB = 1024 * 1024;
    const eight: VmFixture[] = [
      { name: "db-0", node: "node-b", disks: [4 * MiB, 2 * MiB] },
      { name: "db-1", node: "node-b", disks: [3 * MiB + 1, 0] },
      { name: "web-0", node: "node-b", disks: [2 * MiB] },
      { name: "web-1", node: "node-c", disks: [2 * MiB] },
      { name: "web-2", node: "node-c", disks: [1] },
      { name: "cache-0", node: "node-c", disks: [5 * MiB] },
      { name: "queue-0", node: "node-a", disks: [MiB, MiB] },
      { name: "monitor-0", node: "node-a", disks: [3 * MiB], labels: { "fedbackup.test/guest-agent": "false" } },
    ];
    await runBackup({ vms: eight }, ({ env, fb, steps }) => {
      assert.equal(fb.status?.phase, "Completed");
      assert.equal(fb.status?.progress?.workloadsCaptured, 8);
      assertFilesMatch(env, fb, eight);
      const captured = steps.flatMap((s) => s.status?.captured ?? []);
      const monitor = captured.find((c) => c.name === "monitor-0");
      assert.equal(monitor?.indication, "NoGuestAgent", "a VM without a guest agent is captured and says so");
      assert.ok(captured.filter((c) => c.name !== "monitor-0").every((c) => c.indication === "GuestAgent"));
      const db0 = captured.find((c) => c.name === "db-0");
      assert.equal(db0?.bytes, 6 * MiB);
      assert.equal(db0?.files, 2);
    });
  });

  describe("node ordering policies", () => {
    // Each policy's order is unit-tested (planning/order-nodes.ts); here each runs once against the cluster.
    // make test keeps one of each kind of input (failed steps, labels, node capacity in the reserved-memory
    // case below, the control-plane role in the Skip case), the others are [long].
    // Capacities (setup.ts): node-a 128Gi (control plane), node-b 64Gi, node-c 256Gi. VMs: a 1, b 4, c 2.
    const cases: Array<{
      title: string;
      spec: Partial<FederatedBackup["spec"]>;
      vms?: VmFixture[];
      order: string[] | "random" | "failures";
      before?: (env: BackupEnv) => Promise<void>;
    }> = [
      {
        title: "FailureRate: the node with the most recent failed steps first, ties by name",
        spec: { ordering: { policy: "FailureRate" } },
        // Failure history is cluster-wide (other tests fail nodes too), so the expected order is computed
        // from the failed steps that exist when the backup starts; node-c gets the most.
        order: "failures",
        before: async (env) => {
          for (let i = 0; i < 5; i++) await createFailedStep(env, `earlier${i}`, "node-c");
          await new Promise((r) => setTimeout(r, 500)); // into the operator's cache
        },
      },
      {
        title: "CriticalWorkload: the node running a critical VM first",
        spec: { ordering: { policy: "CriticalWorkload" } },
        vms: SEVEN.map((vm) => (vm.name === "a1" ? { ...vm, labels: { "fedbackup.io/critical": "true" } } : vm)),
        order: ["node-a", "node-b", "node-c"],
      },
      {
        title: "FreeResources: the node with the most free memory first [long]",
        spec: { ordering: { policy: "FreeResources" } },
        order: ["node-c", "node-a", "node-b"],
      },
      {
        title: "Explicit: the given node list [long]",
        spec: { ordering: { policy: "Explicit", nodes: ["node-c", "node-a", "node-b"] } },
        order: ["node-c", "node-a", "node-b"],
      },
      {
        title: "Random: a seeded shuffle that the planner reproduces [long]",
        spec: { ordering: { policy: "Random", seed: 7 } },
        order: "random",
      },
      {
        title: "controlPlaneNode First: the control-plane node leads [long]",
        spec: { ordering: { controlPlaneNode: "First" } },
        order: ["node-a", "node-b", "node-c"],
      },
      {
        title: "controlPlaneNode Last: the control-plane node comes last [long]",
        spec: { ordering: { policy: "FreeResources", controlPlaneNode: "Last" } },
        order: ["node-c", "node-b", "node-a"],
      },
    ];
    for (const c of cases) {
      it(c.title, async () => {
        let failures = new Map<string, number>();
        const before = async (env: BackupEnv) => {
          await c.before?.(env);
          failures = await failedStepsPerNode();
        };
        await runBackup({ spec: c.spec, ...(c.vms ? { vms: c.vms } : {}), before }, ({ fb, observer }) => {
          assert.equal(fb.status?.phase, "Completed");
          const nodes = ["node-a", "node-b", "node-c"];
          const expected =
            c.order === "failures"
              ? nodes.sort((x, y) => (failures.get(y) ?? 0) - (failures.get(x) ?? 0) || x.localeCompare(y))
              : c.order === "random"
                ? orderNodes(
                    nodes.map((name) => ({
                      name,
                      workloads: 0,
                      critical: 0,
                      maxPriority: 0,
                      freeCpuMilli: 0,
                      freeMemoryBytes: 0,
                      recentFailures: 0,
                      controlPlane: false,
                    })),
                    { policy: "Random", seed: 7 },
                  ).order
                : c.order;
          if (c.order === "failures") assert.equal(expected[0], "node-c");
          assert.deepEqual(
            observer.jobs.map((j) => j.node),
            expected,
          );
          assert.deepEqual(observer.overlaps, []);
        });
      });
    }

    it("FreeResources ranks by what is unreserved: a pod requesting 200Gi on node-c puts it last", async () => {
      let reserving: { namespace: string } | undefined;
      try {
        await runBackup(
          {
            spec: { ordering: { policy: "FreeResources" } },
            before: async (env) => {
              reserving = { namespace: env.namespace };
              await adminClient().create(Resources.Pod, {
                apiVersion: "v1",
                kind: "Pod",
                metadata: { name: "big", namespace: env.namespace },
                spec: {
                  nodeName: "node-c",
                  containers: [{ name: "c", image: "busybox", resources: { requests: { memory: "200Gi" } } }],
                },
              } as KubeObject);
              await new Promise((r) => setTimeout(r, 500)); // into the operator's cache
            },
          },
          ({ fb, observer }) => {
            assert.equal(fb.status?.phase, "Completed");
            // Allocatable 128Gi (a), 64Gi (b), 256Gi - 200Gi = 56Gi (c).
            assert.deepEqual(
              observer.jobs.map((j) => j.node),
              ["node-a", "node-b", "node-c"],
            );
          },
        );
      } finally {
        if (reserving)
          await adminClient()
            .delete(Resources.Pod, reserving.namespace, "big")
            .catch(() => {});
      }
    });

    it("controlPlaneNode Skip: the control-plane node's VMs are reported, not silently left out", async () => {
      await runBackup({ spec: { ordering: { controlPlaneNode: "Skip" } } }, ({ fb, observer }) => {
        assert.deepEqual(
          observer.jobs.map((j) => j.node),
          ["node-b", "node-c"],
        );
        assert.equal(fb.status?.phase, "PartiallyFailed");
        assert.deepEqual(
          fb.status?.missing?.map((m) => [m.name, m.reason]),
          [["a1", "NodeSkipped"]],
        );
      });
    });
  });

  it("captures a VM that migrated to an already backed-up node in round 2, exactly once", async () => {
    await runBackup(
      {
        onJob: async (job, event, env) => {
          if (job.node === "node-b" && event === "finished")
            await migrateVm(adminClient(), env.namespace, "c1", "node-c", "node-b");
        },
      },
      async ({ env, fb, steps }) => {
        assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
        assert.equal(fb.status?.progress?.round, 2);
        assert.equal(fb.status?.progress?.workloadsCaptured, 7);
        const round2 = steps.filter((s) => s.spec.round === 2);
        assert.deepEqual(
          round2.map((s) => [s.spec.node, (s.spec.workloads ?? []).map((w) => w.name)]),
          [["node-b", ["c1"]]],
        );
        const stepC = steps.find((s) => s.spec.round === 1 && s.spec.node === "node-c")!;
        assert.deepEqual(
          stepC.status?.failed?.map((f) => [f.name, f.reason]),
          [["c1", "Migrated"]],
        );
        assert.ok(
          [...capturedCounts(steps).values()].every((n) => n === 1),
          "every VM captured exactly once",
        );
        const c1 = (await kubevirtDouble()).callsFor(env.namespace, "c1");
        assert.deepEqual(
          c1.map((c) => [c.op, c.node]),
          [
            ["freeze", "node-b"],
            ["unfreeze", "node-b"],
          ],
        );
        assertFilesMatch(env, fb, SEVEN);
      },
    );
  });

  it("chases the VMs of a node that fails mid-backup on the nodes they moved to, and names the failed node", async () => {
    const runner = await podRunner();
    try {
      await runBackup(
        {
          onJob: async (job, event, env) => {
            if (job.node !== "node-c" || event !== "created") return;
            // node-c dies: its agent stops, kwok no longer keeps it Ready, and its VMs restart on node-a.
            runner.killNode("node-c");
            await setNodeReady("node-c", false);
            for (const vm of ["c1", "c2"]) await migrateVm(adminClient(), env.namespace, vm, "node-c", "node-a");
          },
        },
        async ({ env, fb, steps }) => {
          assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 2));
          const failedNode = fb.status?.nodes?.find((n) => n.name === "node-c" && n.round === 1);
          assert.equal(failedNode?.phase, "Failed");
          assert.match(failedNode?.message ?? "", /node-c became NotReady/);
          assert.equal(fb.status?.progress?.nodesFailed, 1);
          // The NotReady transition is on record for the FailureRate policy, outside the operator's memory.
          const health = await adminClient().get<KubeObject & { data?: Record<string, string> }>(
            Resources.ConfigMap,
            "fedbackup-system",
            "fedbackup-node-health",
          );
          assert.ok((health.data?.["node-c"] ?? "").length > 0, JSON.stringify(health.data));
          const round2 = steps.filter((s) => s.spec.round === 2);
          assert.deepEqual(
            round2.map((s) => [s.spec.node, (s.spec.workloads ?? []).map((w) => w.name)]),
            [["node-a", ["c1", "c2"]]],
          );
          assertFilesMatch(env, fb, SEVEN);
        },
      );
    } finally {
      runner.deadNodes.delete("node-c");
      await setNodeReady("node-c", true);
    }
  });

  it("thaws the VMs a lost node left frozen once they can be reached again, and records it", async () => {
    const runner = await podRunner();
    const vms: VmFixture[] = [
      { name: "a1", node: "node-a" },
      { name: "c1", node: "node-c" },
    ];
    try {
      await runBackup(
        {
          vms,
          onJob: async (job, event, env) => {
            if (job.node !== "node-c" || event !== "created") return;
            // node-c dies with its agent between freeze and thaw: KubeVirt still reports the guest frozen.
            runner.killNode("node-c");
            await setNodeReady("node-c", false);
            await adminClient().patch(Resources.VirtualMachineInstance, env.namespace, "c1", {
              status: { fsFreezeStatus: "frozen" },
            });
          },
        },
        async ({ env, fb }) => {
          assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status, null, 2));
          const frozen = async () =>
            (
              await adminClient().get<KubeObject & { status?: { fsFreezeStatus?: string } }>(
                Resources.VirtualMachineInstance,
                env.namespace,
                "c1",
              )
            ).status?.fsFreezeStatus === "frozen";
          const stepOnC = async () => (await stepsOf(env.namespace, "nightly")).find((s) => s.spec.node === "node-c")!;
          // Unreachable while its node is down: still frozen, still pending.
          assert.equal(await frozen(), true);
          assert.equal((await stepOnC()).status?.thawPending, true);

          runner.deadNodes.delete("node-c");
          await setNodeReady("node-c", true);
          await waitFor("c1 to be thawed", 60_000, async () => ((await frozen()) ? undefined : true));
          const step = await waitFor("the thaw to be recorded", 30_000, async () => {
            const s = await stepOnC();
            return s.status?.thawPending === false ? s : undefined;
          });
          assert.deepEqual(
            step.status?.thawed?.map((t) => [t.name, t.node]),
            [["c1", "node-c"]],
          );
          const unfreezes = (await kubevirtDouble())
            .callsFor(env.namespace, "c1")
            .filter(
              (c) => c.op === "unfreeze" && c.user === "system:serviceaccount:fedbackup-system:fedbackup-operator",
            );
          assert.equal(unfreezes.length, 1, "the operator thawed it once");
        },
      );
    } finally {
      runner.deadNodes.delete("node-c");
      await setNodeReady("node-c", true);
    }
  });

  it("reports a VM deleted mid-backup as missing with reason NotFound, PartiallyFailed", async () => {
    await runBackup(
      {
        onJob: async (job, event, env) => {
          if (job.node === "node-b" && event === "finished")
            await adminClient().delete(Resources.VirtualMachineInstance, env.namespace, "c2");
        },
      },
      ({ fb }) => {
        assert.equal(fb.status?.phase, "PartiallyFailed");
        assert.equal(fb.status?.progress?.workloadsCaptured, 6);
        assert.deepEqual(
          fb.status?.missing?.map((m) => [m.name, m.reason]),
          [["c2", "NotFound"]],
        );
        assert.equal(fb.status?.conditions?.find((c) => c.type === "Verified")?.reason, "WorkloadsMissing");
      },
    );
  });

  for (const policy of ["Delete", "Retain"] as const) {
    it(`on deletion with deletionPolicy ${policy}, ${policy === "Delete" ? "removes" : "keeps"} the backup's files`, async () => {
      const vms = SEVEN.slice(0, 2);
      await runBackup({ vms, spec: { deletionPolicy: policy } }, async ({ env, fb }) => {
        assert.equal(fb.status?.phase, "Completed");
        const dir = path.join(env.location.hostDir, fb.status.backupPath!);
        assert.ok(existsSync(path.join(dir, env.namespace, "a1", "manifest.json")));
        await adminClient().delete(Resources.FederatedBackup, env.namespace, "nightly");
        await waitFor("the FederatedBackup to be gone", 60_000, async () => {
          try {
            await adminClient().get(Resources.FederatedBackup, env.namespace, "nightly");
            return undefined;
          } catch {
            return true;
          }
        });
        assert.equal(existsSync(dir), policy === "Retain", `${dir} ${policy === "Retain" ? "kept" : "removed"}`);
        for (const vm of vms)
          assert.ok(existsSync(path.join(env.shared.hostDir, diskPaths(env.namespace, vm)[0]!)), "VM disks untouched");
      });
    });
  }

  it("deleted while its node Job runs: stops the agent first, cleans up under the volume's Lease, says FilesRemoved only when true", async () => {
    const env = await backupEnv("fb-deleted");
    let deleting: Promise<void> | undefined;
    // When first's node Job appears: a second run of the same volume is created (it waits for the Lease
    // first holds), then first is deleted while its agent works.
    const observer = new BackupObserver([env.namespace], (job, event) => {
      if (event === "created" && job.name.startsWith("first-") && !deleting) {
        deleting = (async () => {
          // Once its agent works (it froze a VM of its node), not while its pod is still being set up.
          const double = await kubevirtDouble();
          await waitFor("first's agent to freeze a VM", 60_000, () =>
            double.callsFor(env.namespace, "b1").some((c) => c.op === "freeze") ? true : undefined,
          );
          await adminClient().create(Resources.FederatedBackup, backupManifest(env, "second"));
          await adminClient().delete(Resources.FederatedBackup, env.namespace, "first");
        })();
      }
    });
    await observer.start();
    const operator = await startOperator();
    const state = async () =>
      JSON.stringify({
        jobs: observer.jobs.map((j) => [j.name, j.outcome]),
        liveJobs: (await adminClient().list(Resources.Job, { namespace: env.namespace })).items.map((j) => [
          j.metadata.name,
          j.metadata.deletionTimestamp,
          j.metadata.finalizers,
        ]),
        pods: (
          await adminClient().list<KubeObject & { status?: { phase?: string } }>(Resources.Pod, {
            namespace: env.namespace,
          })
        ).items.map((p) => [p.metadata.name, p.status?.phase, p.metadata.deletionTimestamp, p.metadata.finalizers]),
        backups: (await adminClient().list<Backup>(Resources.FederatedBackup, { namespace: env.namespace })).items.map(
          (b) => [b.metadata.name, b.status?.phase, b.metadata.deletionTimestamp, b.status?.conditions],
        ),
      });
    try {
      // b2's freeze answers late: first's agent is still at work on node-b when first is deleted.
      const vms = SEVEN.slice(0, 3).map((vm) =>
        vm.name === "b2" ? { ...vm, annotations: { [FREEZE_DELAY_ANNOTATION]: "4000" } } : vm,
      );
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      const first = await adminClient().create<Backup>(Resources.FederatedBackup, backupManifest(env, "first"));
      await waitFor("first's node Job and the second run", 60_000, () => (deleting ? true : undefined)).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}: ${await state()}`);
        },
      );
      await deleting;
      const second = await waitForPhase(env.namespace, "second", 90_000).catch(async (err: unknown) => {
        throw new Error(`${String(err)}: ${await state()}`);
      });
      await waitFor("first to be gone", 30_000, async () => {
        try {
          await adminClient().get(Resources.FederatedBackup, env.namespace, "first");
          return undefined;
        } catch {
          return true;
        }
      });
      assert.equal(second.status?.phase, "Completed", JSON.stringify(second.status));
      // Every agent Job of the volume, the cleanup's included, ran alone.
      assert.deepEqual(observer.overlaps, [], JSON.stringify(observer.jobs.map((j) => [j.name, j.outcome])));
      const firstJobs = observer.jobs.filter((j) => j.name.startsWith("first-"));
      assert.deepEqual(
        firstJobs.map((j) => j.outcome),
        ["Deleted", "Complete"],
        "the node Job stopped, then the cleanup ran",
      );
      const firstDir = path.join(env.location.hostDir, env.namespace, `first-${first.metadata.uid!.slice(0, 8)}`);
      assert.ok(!existsSync(firstDir), `${firstDir} is removed`);
      assertFilesMatch(env, second, vms);
      const events = await adminClient().list<KubeObject & { reason?: string; regarding?: { name?: string } }>(
        Resources.Event,
        { namespace: env.namespace },
      );
      const told = events.items.filter((e) => e.regarding?.name === "first").map((e) => e.reason);
      assert.ok(told.includes("FilesRemoved"), told.join(", "));
      assert.ok(!told.includes("FilesLeft"), told.join(", "));
    } finally {
      await operator.stop();
      await observer.stop();
      env.cleanup();
    }
  });

  it("fails a backup whose shared volume claim does not exist, once, with a readable condition", async () => {
    const env = await backupEnv("fb-invalid");
    const operator = await startOperator();
    try {
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "broken", { sharedVolume: { claimName: "no-such-claim", nodeMountPath: NODE_MOUNT_PATH } }),
      );
      const fb = await waitForPhase(env.namespace, "broken");
      assert.equal(fb.status?.phase, "Failed");
      const ready = fb.status?.conditions?.find((c) => c.type === "Ready");
      assert.equal(ready?.reason, "SharedVolumeClaimNotFound");
      assert.match(
        ready?.message ?? "",
        /PersistentVolumeClaim .*\/no-such-claim \(spec.sharedVolume.claimName\) does not exist/,
      );
      // Terminal: no retry storm afterwards. The operator watches every namespace, so the periodic
      // validations of other tests' BackupLocations may fall in the window; they are not this run's.
      operator.client.stats.reset();
      await new Promise((r) => setTimeout(r, 2_000));
      const after = withoutLocationValidations(operator.client.stats.snapshot());
      const total = Object.values(after).reduce((a, b) => a + b, 0);
      assert.ok(total <= 2, `requests after failing: ${JSON.stringify(after)}`);
      const jobs = await adminClient().list(Resources.Job, { namespace: env.namespace });
      assert.equal(jobs.items.length, 0);
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });
});

describe("FederatedBackup controller, restart-safety and exclusivity", function () {
  this.timeout(180_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("[long] gives the same result when the operator is SIGKILLed mid-Job, between nodes and during verification", async () => {
    const env = await backupEnv("fb-restart");
    let operator = await startOperatorProcess();
    const kills: string[] = [];
    const restart = async (point: string) => {
      kills.push(point);
      await operator.kill();
      operator = await startOperatorProcess();
    };
    const observer = new BackupObserver([env.namespace], async (job, event) => {
      if (job.node === "node-b" && event === "created") await restart("mid-Job");
      else if (job.node === "node-b" && event === "finished") await restart("between nodes");
      else if (job.node === "node-a" && event === "finished") await restart("verification");
    });
    await observer.start();
    try {
      for (const vm of SEVEN) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await adminClient().create(Resources.FederatedBackup, backupManifest(env, "nightly"));
      const fb = await waitForPhase(env.namespace, "nightly");
      assert.deepEqual(kills, ["mid-Job", "between nodes", "verification"]);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
      assert.equal(fb.status?.progress?.workloadsCaptured, 7);
      assert.deepEqual(
        observer.jobs.map((j) => j.node),
        ["node-b", "node-c", "node-a"],
        "one Job per node step, none repeated",
      );
      assert.deepEqual(observer.overlaps, []);
      const steps = await stepsOf(env.namespace, "nightly");
      assert.equal(steps.length, 3);
      assert.ok([...capturedCounts(steps).values()].every((n) => n === 1));
      const double = await kubevirtDouble();
      for (const vm of SEVEN) {
        assert.deepEqual(
          double.callsFor(env.namespace, vm.name).map((c) => c.op),
          ["freeze", "unfreeze"],
          `${vm.name} frozen and thawed exactly once`,
        );
      }
      assertFilesMatch(env, fb, SEVEN);
    } finally {
      await operator.kill();
      await observer.stop();
      env.cleanup();
    }
  });

  it("never runs the Jobs of two backups of one shared volume at the same time", async () => {
    const env = await backupEnv("fb-two");
    const observer = new BackupObserver([env.namespace]);
    await observer.start();
    const operator = await startOperator();
    const vms: VmFixture[] = [
      ...SEVEN.map((vm) => ({ ...vm, labels: { set: "one" } })),
      { name: "x1", node: "node-a", labels: { set: "two" } },
      { name: "x2", node: "node-c", labels: { set: "two" } },
    ];
    try {
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await Promise.all([
        adminClient().create(
          Resources.FederatedBackup,
          backupManifest(env, "first", { workloads: { selector: { matchLabels: { set: "one" } } } }),
        ),
        adminClient().create(
          Resources.FederatedBackup,
          backupManifest(env, "second", { workloads: { selector: { matchLabels: { set: "two" } } } }),
        ),
      ]);
      const [first, second] = await Promise.all([
        waitForPhase(env.namespace, "first"),
        waitForPhase(env.namespace, "second"),
      ]);
      assert.equal(first.status?.phase, "Completed");
      assert.equal(second.status?.phase, "Completed");
      assert.equal(observer.jobs.length, 5);
      assert.deepEqual(observer.overlaps, [], "no two Jobs ran at the same time");
      // One run holds the volume from its first node to its last: the other's Jobs all come after.
      const owners = observer.jobs.map((j) => j.name.split("-r")[0]);
      assert.ok(
        owners.join(",") === "first,first,first,second,second" ||
          owners.join(",") === "second,second,first,first,first",
        owners.join(","),
      );
    } finally {
      await operator.stop();
      await observer.stop();
      env.cleanup();
    }
  });
});

describe("FederatedBackup controller, CSI snapshot method", function () {
  this.timeout(180_000);
  const CLASS = "fedbackup-test-hostpath";
  const csiSpec = { snapshot: { method: "CSI" as const, volumeSnapshotClassName: CLASS } };

  before(async () => {
    await kubevirtDouble();
    await podRunner();
    await (await csiDouble()).ensureClass(CLASS);
  });

  it("fails a CSI backup whose VolumeSnapshotClass does not exist with VolumeSnapshotClassNotFound", async () => {
    const env = await backupEnv("fb-csi-noclass");
    const operator = await startOperator();
    try {
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "noclass", { snapshot: { method: "CSI", volumeSnapshotClassName: "no-such-class" } }),
      );
      const fb = await waitForPhase(env.namespace, "noclass");
      assert.equal(fb.status?.phase, "Failed");
      const ready = fb.status?.conditions?.find((c) => c.type === "Ready");
      assert.equal(ready?.reason, "VolumeSnapshotClassNotFound");
      assert.match(ready?.message ?? "", /VolumeSnapshotClass no-such-class/);
      const jobs = await adminClient().list(Resources.Job, { namespace: env.namespace });
      assert.equal(jobs.items.length, 0);
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });

  it("captures VMs on 3 nodes through a VolumeSnapshot per node, extracts them byte for byte and cleans up [long]", async () => {
    const KiB = 1024;
    const vms: VmFixture[] = [
      { name: "db-0", node: "node-b", disks: [512 * KiB, 64 * KiB] },
      { name: "web-0", node: "node-b", disks: [128 * KiB + 1] },
      { name: "web-1", node: "node-c", disks: [256 * KiB] },
      { name: "cache-0", node: "node-a", disks: [300 * KiB, 0] },
    ];
    await runBackup({ vms, spec: csiSpec }, async ({ env, fb, observer, steps }) => {
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
      assert.equal(fb.status?.snapshotMethod, "CSI");
      assert.equal(fb.status?.progress?.workloadsCaptured, vms.length);
      assertFilesMatch(env, fb, vms);
      assert.deepEqual(observer.overlaps, [], "the extract Job runs after its snapshot Job, one node at a time");

      const csi = await csiDouble();
      const double = await kubevirtDouble();
      assert.equal(steps.length, 3);
      for (const step of steps) {
        const node = step.spec.node!;
        const agent = `system:serviceaccount:${env.namespace}:${runAgentServiceAccountName({ name: fb.metadata.name!, uid: fb.metadata.uid! })}`;
        assert.equal(step.status?.phase, "Succeeded", JSON.stringify(step.status));
        assert.equal(step.status?.snapshotMethod, "CSI");
        assert.equal(step.status?.volumeSnapshot?.name, step.metadata.name);
        assert.ok(step.status?.volumeSnapshot?.creationTime, "the cut point is recorded");
        assert.equal(step.status?.volumeSnapshot?.released, true);
        const jobs = observer.jobs.filter((j) => j.name.startsWith(step.metadata.name!)).map((j) => [j.name, j.node]);
        assert.deepEqual(jobs, [
          [step.metadata.name, node],
          [`${step.metadata.name}-extract`, node],
        ]);
        const snapshot = csi.snapshots.filter((s) => s.namespace === env.namespace && s.name === step.metadata.name);
        assert.equal(snapshot.length, 1, `one VolumeSnapshot for ${node}`);
        assert.equal(snapshot[0]!.sourceClaim, env.shared.claimName);
        for (const c of step.status?.captured ?? []) {
          assert.equal(c.indication, "GuestAgent");
          // Every freeze has its thaw, on the VM's node, by the agent; the cut point is inside the window.
          const calls = double.callsFor(env.namespace, c.name);
          assert.deepEqual(
            calls.map((x) => [x.op, x.node, x.user]),
            [
              ["freeze", node, agent],
              ["unfreeze", node, agent],
            ],
            c.name,
          );
          assert.ok(calls[0]!.at <= snapshot[0]!.at && snapshot[0]!.at <= calls[1]!.at, `${c.name}: cut while frozen`);
          const manifest = JSON.parse(
            readFileSync(
              path.join(env.location.hostDir, fb.status.backupPath!, env.namespace, c.name, "manifest.json"),
              "utf8",
            ),
          ) as { method: string; consistency: string; freeze: { windowMs: number } };
          assert.equal(manifest.method, "CSI");
          assert.equal(manifest.consistency, "ApplicationConsistent");
          assert.equal(manifest.freeze.windowMs, c.freezeWindowMs);
        }
      }
      // The restored claims and (extractAt Backup) the VolumeSnapshots are gone at the end.
      await waitFor("the restored claims to be gone", 30_000, async () => {
        const claims = await adminClient().list(Resources.PersistentVolumeClaim, { namespace: env.namespace });
        const left = claims.items.filter((c) => c.metadata.name!.endsWith("-snapshot"));
        return left.length === 0 ? true : undefined;
      });
      const snapshots = await adminClient().list(Resources.VolumeSnapshot, { namespace: env.namespace });
      assert.deepEqual(
        snapshots.items.map((s) => s.metadata.name),
        [],
      );
      assert.equal(csi.restores.filter((r) => r.namespace === env.namespace).length, 3);
    });
  });
});
