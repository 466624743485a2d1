// WorkloadRestore end to end: a real backup first (agents executed by the pod runner, files on real
// directories), then the restore through the real API server, job controller and RBAC, with VMs run by
// the simulated KubeVirt VM controller. The VMIs are watched throughout, so the tests can say where every
// instance was at each moment and that no disk was written while its VM ran.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { FederatedBackup, NodeRestore, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { ANNOTATION_RESTORE_HOLD } from "../../src/controllers/workloadrestore/vm-hold.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { SimulatedVmController, type SimulatedVmOptions, type VirtualMachine } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, diskPaths, NODE_MOUNT_PATH, type VmFixture } from "../harness/workloads.js";
import { xfsImage } from "../harness/xfs.js";
import { BackupObserver, type JobRecord } from "./backup-observer.js";
import { InstanceLog } from "./instance-log.js";
import {
  adminClient,
  backupEnv,
  kubevirtDouble,
  podRunner,
  setNodeReady,
  startOperator,
  startOperatorProcess,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { restoreAndWait, waitForRestore } from "./restore-runs.js";

type Restore = WorkloadRestore & KubeObject;
type Backup = FederatedBackup & KubeObject;
type Vmi = VirtualMachineInstance & KubeObject;
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

interface Setup {
  env: BackupEnv;
  sim: SimulatedVmController;
  instances: InstanceLog;
  observer: BackupObserver;
  backup: Backup;
  /** The VMs' disk contents at backup time, by relative path. */
  atBackup: Map<string, Buffer>;
}

/** A namespace with VMs, a Completed backup of all of them, and watchers; then `body`. */
async function withBackup(
  vms: VmFixture[],
  body: (s: Setup) => Promise<void>,
  options: {
    inProcessOperator?: boolean;
    backupSpec?: Partial<FederatedBackup["spec"]>;
    sim?: SimulatedVmOptions;
    /** Runs before the VMs are created (e.g. mounts a filesystem on the shared volume); returns its undoing. */
    prepare?: (env: BackupEnv) => () => void;
  } = {},
): Promise<void> {
  const env = await backupEnv("wr");
  const unprepare = options.prepare?.(env);
  await kubevirtDouble();
  await podRunner();
  const sim = new SimulatedVmController(adminClient(), options.sim);
  await sim.start();
  const instances = new InstanceLog(env.namespace);
  await instances.start();
  const observer = new BackupObserver([env.namespace]);
  await observer.start();
  const operator = options.inProcessOperator === false ? undefined : await startOperator();
  try {
    for (const vm of vms) await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, vm);
    const atBackup = new Map<string, Buffer>();
    for (const vm of vms) {
      for (const rel of diskPaths(env.namespace, vm))
        atBackup.set(rel, readFileSync(path.join(env.shared.hostDir, rel)));
    }
    const backup = operator ? await runBackup(env, "nightly", options.backupSpec) : (undefined as unknown as Backup);
    await body({ env, sim, instances, observer, backup, atBackup });
    instances.assertNeverTwo();
  } finally {
    await operator?.stop();
    await observer.stop();
    await instances.stop();
    await sim.stop();
    unprepare?.();
    env.cleanup();
  }
}

async function runBackup(
  env: BackupEnv,
  name = "nightly",
  spec: Partial<FederatedBackup["spec"]> = { snapshot: { method: "Copy" } },
): Promise<Backup> {
  await adminClient().create(Resources.FederatedBackup, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: env.namespace },
    spec: {
      sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env.location.claimName } },
      ...spec,
    },
  } as KubeObject);
  const fb = await waitFor(`backup ${name}`, 120_000, async () => {
    const b = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, name);
    return FINISHED.includes(b.status?.phase ?? "") ? b : undefined;
  });
  assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
  return fb;
}

const restore = (env: BackupEnv, name: string, spec: Partial<WorkloadRestore["spec"]>): Promise<Restore> =>
  restoreAndWait(env.namespace, name, spec, 150_000);

/** Writes new random bytes over a VM's disks: what the restore must undo. */
function damage(env: BackupEnv, vm: VmFixture): void {
  for (const rel of diskPaths(env.namespace, vm)) {
    const file = path.join(env.shared.hostDir, rel);
    writeFileSync(file, randomBytes(readFileSync(file).length));
  }
}

function assertRestored(s: Setup, vm: VmFixture): void {
  for (const rel of diskPaths(s.env.namespace, vm)) {
    const now = readFileSync(path.join(s.env.shared.hostDir, rel));
    assert.ok(now.equals(s.atBackup.get(rel)!), `${rel} is not the backed-up content`);
  }
}

async function vmi(env: BackupEnv, name: string): Promise<Vmi> {
  return adminClient().get<Vmi>(Resources.VirtualMachineInstance, env.namespace, name);
}

async function vmObject(env: BackupEnv, name: string): Promise<VirtualMachine> {
  return adminClient().get<VirtualMachine>(Resources.VirtualMachine, env.namespace, name);
}

/** Running on `node`, no longer held or pinned by the restore. */
async function assertRunsFreelyOn(env: BackupEnv, name: string, node: string): Promise<void> {
  const instance = await waitFor(`${name} Running on ${node}`, 20_000, async () => {
    const v = await vmi(env, name).catch(() => undefined);
    return v?.status?.phase === "Running" && v.status.nodeName === node ? v : undefined;
  });
  assert.equal(instance.status?.nodeName, node);
  const vm = await vmObject(env, name);
  assert.equal(vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD], undefined, `${name} is still held`);
  assert.equal(vm.spec.template.spec.nodeSelector?.["kubernetes.io/hostname"], undefined, `${name} is still pinned`);
  assert.equal(vm.spec.runStrategy, "Always");
}

async function stepsOf(env: BackupEnv, name: string): Promise<Array<NodeRestore & KubeObject>> {
  const list = await adminClient().list<NodeRestore & KubeObject>(Resources.NodeRestore, {
    namespace: env.namespace,
    labelSelector: `fedbackup.io/restore=${name}`,
  });
  return list.items.sort((a, b) => a.spec.order - b.spec.order);
}

const restoreJobs = (s: Setup, name: string): JobRecord[] =>
  s.observer.jobs.filter((j) => j.name.startsWith(`${name}-`));

const resultOf = (r: Restore, name: string) => r.status?.results?.find((x) => x.name === name);

describe("WorkloadRestore", function () {
  this.timeout(300_000);

  it("restores VMs that migrated after the backup on the nodes they run on now, one node at a time", async () => {
    const vms: VmFixture[] = [
      { name: "a", node: "node-a", disks: [256 * 1024, 64 * 1024] },
      { name: "b", node: "node-b" },
      { name: "c", node: "node-c", disks: [1024 * 1024 + 1] },
      { name: "untouched", node: "node-b" },
    ];
    await withBackup(vms, async (s) => {
      const moves: Array<[string, string, string]> = [
        ["a", "node-a", "node-b"],
        ["b", "node-b", "node-c"],
        ["c", "node-c", "node-a"],
      ];
      for (const [name, from, to] of moves) {
        await adminClient().patch(Resources.VirtualMachineInstance, s.env.namespace, name, {
          metadata: { labels: { "kubevirt.io/nodeName": to } },
          status: { nodeName: to, migrationState: { sourceNode: from, targetNode: to, completed: true } },
        });
      }
      for (const vm of vms.slice(0, 3)) damage(s.env, vm);
      const untouched = readFileSync(path.join(s.env.shared.hostDir, diskPaths(s.env.namespace, vms[3]!)[0]!));

      const r = await restore(s.env, "after-move", {
        workloads: ["a", "b", "c"].map((name) => ({ namespace: s.env.namespace, name })),
      });
      assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
      assert.equal(r.status?.progress?.restored, "3/3");
      for (const [name, , to] of moves) {
        const planned: { restoreNode?: string; action: string } | undefined = r.status?.plan?.find(
          (p) => p.name === name,
        );
        assert.equal(planned?.restoreNode, to);
        assert.equal(planned?.action, "RestoreInPlace");
        const result = resultOf(r, name);
        assert.equal(result?.phase, "Restored");
        assert.equal(result?.node, to);
        assert.equal(result?.verified, true);
        assert.ok((result?.bytes ?? 0) > 0);
        await assertRunsFreelyOn(s.env, name, to);
        assertRestored(
          s,
          vms.find((v) => v.name === name)!,
        );
      }
      const other = readFileSync(path.join(s.env.shared.hostDir, diskPaths(s.env.namespace, vms[3]!)[0]!));
      assert.ok(other.equals(untouched), "a VM outside the restore was written");

      // One Job per node, pinned there, never two at once, each under the Lease held for its node.
      const jobs = restoreJobs(s, "after-move");
      assert.deepEqual(jobs.map((j) => j.node).sort(), ["node-a", "node-b", "node-c"]);
      assert.deepEqual(s.observer.overlaps, []);
      for (const job of jobs) {
        assert.equal(job.outcome, "Complete");
        assert.deepEqual([...job.leaseHolders], [job.node]);
        const step = (await stepsOf(s.env, "after-move")).find((st) => st.spec.node === job.node)!;
        for (const w of step.spec.workloads) s.instances.assertStoppedDuring(w.name, job);
      }
      const steps = await stepsOf(s.env, "after-move");
      assert.deepEqual(
        steps.map((st) => st.status?.phase),
        ["Succeeded", "Succeeded", "Succeeded"],
      );
    });
  });

  it("migrates (Migrate) or stops (Stop) a VM running elsewhere before restoring it on the node named", async () => {
    const vms: VmFixture[] = [
      { name: "mig", node: "node-b" },
      { name: "stp", node: "node-b" },
    ];
    await withBackup(vms, async (s) => {
      damage(s.env, vms[0]!);
      damage(s.env, vms[1]!);
      const migUid = (await vmi(s.env, "mig")).metadata.uid;
      const migrated = await restore(s.env, "to-c", {
        workloads: [{ namespace: s.env.namespace, name: "mig" }],
        placement: { policy: "Specified", targetNode: "node-c" },
        conflictPolicy: "Migrate",
      });
      assert.equal(migrated.status?.phase, "Completed", JSON.stringify(migrated.status?.results));
      assert.equal(migrated.status?.plan?.[0]?.action, "MigrateThenRestore");
      await assertRunsFreelyOn(s.env, "mig", "node-c");
      assertRestored(s, vms[0]!);
      // The running instance was live-migrated (same VMI, moved), only then stopped for the restore.
      const migLives = s.instances.lives.get("mig")!;
      assert.deepEqual(migLives.find((l) => l.uid === migUid)?.nodes, ["node-b", "node-c"]);
      const history = s.sim.history(s.env.namespace, "mig").map((h) => `${h.event} ${h.node ?? ""}`.trim());
      assert.deepEqual(history.slice(-3), ["Migrated node-c", "Stopped node-c", "Started node-c"]);

      const stopped = await restore(s.env, "to-a", {
        workloads: [{ namespace: s.env.namespace, name: "stp", targetNode: "node-a" }],
        conflictPolicy: "Stop",
      });
      assert.equal(stopped.status?.phase, "Completed", JSON.stringify(stopped.status?.results));
      assert.equal(stopped.status?.plan?.[0]?.action, "StopThenRestore");
      await assertRunsFreelyOn(s.env, "stp", "node-a");
      assertRestored(s, vms[1]!);
      const stpHistory = s.sim.history(s.env.namespace, "stp").map((h) => `${h.event} ${h.node ?? ""}`.trim());
      assert.deepEqual(stpHistory.slice(-2), ["Stopped node-b", "Started node-a"]);
      assert.ok(!stpHistory.some((h) => h.startsWith("Migrated")));
      for (const name of ["to-c", "to-a"]) {
        const [job] = restoreJobs(s, name);
        s.instances.assertStoppedDuring(name === "to-c" ? "mig" : "stp", job!);
      }
    });
  });

  it("restores a VM that runs nowhere on inactiveTarget, and a group on one node", async () => {
    const vms: VmFixture[] = [
      { name: "idle", node: "node-b" },
      { name: "web", node: "node-b" },
      { name: "app", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      await adminClient().patch(Resources.VirtualMachine, s.env.namespace, "idle", { spec: { runStrategy: "Halted" } });
      await waitFor("idle to stop", 10_000, async () =>
        (await vmi(s.env, "idle").catch(() => undefined)) ? undefined : true,
      );
      for (const vm of vms) damage(s.env, vm);
      const r = await restore(s.env, "inactive-and-group", {
        placement: { policy: "ActiveNode", inactiveTarget: { node: "node-c" } },
        groups: [
          {
            name: "shop",
            workloads: [
              { namespace: s.env.namespace, name: "web" },
              { namespace: s.env.namespace, name: "app" },
            ],
          },
        ],
      });
      assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
      const plan = new Map(r.status?.plan?.map((p) => [p.name, p]));
      assert.equal(plan.get("idle")?.action, "RestoreThenStart");
      assert.equal(plan.get("idle")?.restoreNode, "node-c");
      // A tie between the members' nodes goes to the first by name: app is moved to web's node.
      assert.equal(plan.get("web")?.restoreNode, "node-b");
      assert.equal(plan.get("app")?.restoreNode, "node-b");
      assert.equal(plan.get("app")?.group, "shop");
      await assertRunsFreelyOn(s.env, "idle", "node-c");
      await assertRunsFreelyOn(s.env, "web", "node-b");
      await assertRunsFreelyOn(s.env, "app", "node-b");
      for (const vm of vms) assertRestored(s, vm);
    });
  });

  it("fails only the VM whose backup file is corrupt, leaves its disk as it was and starts it again [long]", async () => {
    const vms: VmFixture[] = [
      { name: "k1", node: "node-b" },
      { name: "k2", node: "node-b", disks: [128 * 1024, 128 * 1024] },
      { name: "k3", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      for (const vm of vms) damage(s.env, vm);
      const k2Disks = diskPaths(s.env.namespace, vms[1]!);
      const before = k2Disks.map((rel) => readFileSync(path.join(s.env.shared.hostDir, rel)));
      const backupDir = path.join(s.env.location.hostDir, s.backup.status!.backupPath!);
      const copy = path.join(backupDir, s.env.namespace, "k2", "files", k2Disks[1]!);
      const bytes = readFileSync(copy);
      bytes[1000] = bytes[1000]! ^ 0xff;
      writeFileSync(copy, bytes);

      const r = await restore(s.env, "corrupt", {});
      assert.equal(r.status?.phase, "PartiallyFailed");
      assert.equal(r.status?.progress?.restored, "2/3");
      const k2 = resultOf(r, "k2");
      assert.equal(k2?.phase, "Failed");
      assert.equal(k2?.reason, "ChecksumMismatch");
      assert.match(k2?.message ?? "", /ChecksumMismatch/);
      assert.match(k2?.message ?? "", /disks were not touched; started again on node-b/);
      k2Disks.forEach((rel, i) => {
        assert.ok(readFileSync(path.join(s.env.shared.hostDir, rel)).equals(before[i]!), `${rel} was touched`);
      });
      await assertRunsFreelyOn(s.env, "k2", "node-b");
      for (const name of ["k1", "k3"]) assert.equal(resultOf(r, name)?.phase, "Restored");
      assertRestored(s, vms[0]!);
      assertRestored(s, vms[2]!);
      const ready = r.status?.conditions?.find((c) => c.type === "Ready");
      assert.equal(ready?.reason, "PartiallyFailed");
    });
  });

  it("refuses a manifest edited at the location to name another VM's disk: ForeignFile, no disk written", async () => {
    const vms: VmFixture[] = [
      { name: "tenant", node: "node-b" },
      { name: "victim", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      const [tenantDisk] = diskPaths(s.env.namespace, vms[0]!);
      const [victimDisk] = diskPaths(s.env.namespace, vms[1]!);
      const backupDir = path.join(s.env.location.hostDir, s.backup.status!.backupPath!);
      // Whoever can write at the location adds the victim's disk, with old content and a matching
      // checksum, to the tenant's backup.
      const old = randomBytes(64 * 1024);
      const manifestFile = path.join(backupDir, s.env.namespace, "tenant", "manifest.json");
      const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as {
        files: Array<{ path: string; bytes: number; sha256: string }>;
        totalBytes: number;
      };
      manifest.files.push({
        ...manifest.files[0]!,
        path: victimDisk!,
        bytes: old.length,
        sha256: createHash("sha256").update(old).digest("hex"),
      });
      manifest.totalBytes += old.length;
      writeFileSync(manifestFile, JSON.stringify(manifest));
      const planted = path.join(backupDir, s.env.namespace, "tenant", "files", victimDisk!);
      mkdirSync(path.dirname(planted), { recursive: true });
      writeFileSync(planted, old);
      damage(s.env, vms[0]!);
      const before = new Map(
        [tenantDisk!, victimDisk!].map((rel) => [rel, readFileSync(path.join(s.env.shared.hostDir, rel))]),
      );

      const r = await restore(s.env, "edited", { workloads: [{ namespace: s.env.namespace, name: "tenant" }] });
      const tenant = resultOf(r, "tenant");
      assert.equal(tenant?.phase, "Failed", JSON.stringify(r.status?.results));
      assert.match(tenant?.message ?? "", /ForeignFile/);
      assert.ok(tenant?.message?.includes(victimDisk!), tenant?.message);
      for (const [rel, content] of before) {
        assert.ok(readFileSync(path.join(s.env.shared.hostDir, rel)).equals(content), `${rel} was written`);
      }
      await assertRunsFreelyOn(s.env, "tenant", "node-b");
      // Nothing granted to the backup's or the restore's agents outlives their steps.
      for (const type of [Resources.Role, Resources.RoleBinding, Resources.ServiceAccount]) {
        const left = await adminClient().list(type, {
          namespace: s.env.namespace,
          labelSelector: "app.kubernetes.io/component=agent-access",
        });
        assert.deepEqual(
          left.items.map((o) => o.metadata.name),
          [],
          `${type.kind}s left`,
        );
      }
    });
  });

  it("restores from the snapshots an extractAt Restore backup kept on the shared volume (Reflink on XFS)", async function () {
    const xfs = xfsImage();
    if (typeof xfs === "string") {
      console.log(`      (skipped: ${xfs})`);
      return this.skip();
    }
    const vms: VmFixture[] = [
      { name: "x1", node: "node-b", disks: [512 * 1024] },
      { name: "x2", node: "node-c", disks: [256 * 1024, 4096] },
    ];
    try {
      await withBackup(
        vms,
        async (s) => {
          // Nothing was extracted to the location: the files are in the kept snapshot.
          const backupDir = path.join(s.env.location.hostDir, s.backup.status!.backupPath!);
          assert.ok(!existsSync(path.join(backupDir, s.env.namespace, "x1", "files")));
          for (const vm of vms) damage(s.env, vm);
          const r = await restore(s.env, "from-snapshot", {});
          assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
          for (const vm of vms) {
            assertRestored(s, vm);
            assert.equal(resultOf(r, vm.name)?.verified, true);
            await assertRunsFreelyOn(s.env, vm.name, vm.node!);
          }
        },
        {
          backupSpec: { snapshot: { method: "Reflink" }, extractAt: "Restore" },
          prepare: (env) => xfs.mount(env.shared.hostDir),
        },
      );
    } finally {
      xfs.cleanup();
    }
  });

  it("restores each VM from its latest capture (source Latest) or from the backup its entry names [long]", async () => {
    const vms: VmFixture[] = [
      { name: "l1", node: "node-b" },
      { name: "l2", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      const disk = (vm: VmFixture) => path.join(s.env.shared.hostDir, diskPaths(s.env.namespace, vm)[0]!);
      for (const vm of vms) damage(s.env, vm);
      const atSecond = vms.map((vm) => readFileSync(disk(vm)));
      await runBackup(s.env, "second");
      for (const vm of vms) damage(s.env, vm);

      const latest = await restore(s.env, "latest", {
        backupRef: undefined,
        source: "Latest",
        workloads: [{ namespace: s.env.namespace, name: "l1" }],
      });
      assert.equal(latest.status?.phase, "Completed", JSON.stringify(latest.status?.results));
      assert.equal(latest.status?.plan?.[0]?.backup, "second");
      assert.ok(readFileSync(disk(vms[0]!)).equals(atSecond[0]!), "l1 is not its latest capture");

      const named = await restore(s.env, "named", {
        backupRef: undefined,
        workloads: [{ namespace: s.env.namespace, name: "l2", backupRef: { name: "nightly" } }],
      });
      assert.equal(named.status?.phase, "Completed", JSON.stringify(named.status?.results));
      assert.equal(named.status?.plan?.[0]?.backup, "nightly");
      assertRestored(s, vms[1]!);
    });
  });

  it("gives up on a node that becomes NotReady while its VMs stop, starts them again and goes on", async () => {
    const vms: VmFixture[] = [
      { name: "c1", node: "node-c" },
      { name: "c2", node: "node-c" },
      { name: "b1", node: "node-b" },
    ];
    try {
      // VMs take 3 s to shut down here, so that node-c fails while its VMs are still stopping.
      await withBackup(
        vms,
        async (s) => {
          for (const vm of vms) damage(s.env, vm);
          const damaged = (vm: VmFixture) =>
            readFileSync(path.join(s.env.shared.hostDir, diskPaths(s.env.namespace, vm)[0]!));
          const before = vms.map(damaged);
          await adminClient().create(Resources.WorkloadRestore, {
            apiVersion: "fedbackup.io/v1alpha1",
            kind: "WorkloadRestore",
            metadata: { name: "node-lost", namespace: s.env.namespace },
            spec: { backupRef: { name: "nightly" } },
          } as KubeObject);
          await waitFor("c1 held", 60_000, async () =>
            (await vmObject(s.env, "c1")).metadata.annotations?.[ANNOTATION_RESTORE_HOLD] ? true : undefined,
          );
          await setNodeReady("node-c", false);
          const r = await waitForRestore(s.env.namespace, "node-lost", 150_000);
          assert.equal(r.status?.phase, "PartiallyFailed", JSON.stringify(r.status?.results));
          for (const name of ["c1", "c2"]) {
            assert.equal(resultOf(r, name)?.phase, "Failed");
            assert.match(
              resultOf(r, name)?.message ?? "",
              /node node-c became NotReady before its disks were restored/,
            );
            const vm = await vmObject(s.env, name);
            assert.equal(vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD], undefined);
            assert.equal(vm.spec.runStrategy, "Always");
          }
          assert.deepEqual(
            restoreJobs(s, "node-lost").map((j) => j.node),
            ["node-b"],
          );
          assert.ok(
            damaged(vms[0]!).equals(before[0]!) && damaged(vms[1]!).equals(before[1]!),
            "a disk on node-c was written",
          );
          assert.equal(resultOf(r, "b1")?.phase, "Restored");
          assertRestored(s, vms[2]!);
        },
        { sim: { stopDelayMs: 3_000 } },
      );
    } finally {
      await setNodeReady("node-c", true);
    }
  });

  it("dryRun publishes the plan and touches nothing", async () => {
    const vms: VmFixture[] = [
      { name: "d1", node: "node-b" },
      { name: "d2", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      const versions = async () =>
        Promise.all(
          vms
            .flatMap((vm) => [vmObject(s.env, vm.name), vmi(s.env, vm.name)])
            .map(async (o) => (await o).metadata.resourceVersion),
        );
      const before = await versions();
      for (const vm of vms) damage(s.env, vm);
      const damaged = vms
        .flatMap((vm) => diskPaths(s.env.namespace, vm))
        .map((rel) => readFileSync(path.join(s.env.shared.hostDir, rel)));
      const r = await restore(s.env, "dry", { dryRun: true, placement: { policy: "Specified", targetNode: "node-a" } });
      assert.equal(r.status?.phase, "Completed");
      assert.equal(r.status?.conditions?.find((c) => c.type === "Ready")?.reason, "DryRun");
      assert.deepEqual(
        r.status?.plan?.map((p) => `${p.name} ${p.activeNode} -> ${p.restoreNode} ${p.action}`),
        ["d1 node-b -> node-a MigrateThenRestore", "d2 node-c -> node-a MigrateThenRestore"],
      );
      assert.deepEqual(await stepsOf(s.env, "dry"), []);
      assert.deepEqual(restoreJobs(s, "dry"), []);
      assert.deepEqual(await versions(), before);
      const after = vms
        .flatMap((vm) => diskPaths(s.env.namespace, vm))
        .map((rel) => readFileSync(path.join(s.env.shared.hostDir, rel)));
      after.forEach((b, i) => assert.ok(b.equals(damaged[i]!)));
    });
  });

  it("rejects a restore from a backup that does not exist with a condition", async () => {
    await withBackup([{ name: "z", node: "node-b" }], async (s) => {
      const r = await restore(s.env, "typo", { backupRef: { name: "nightyl" } });
      assert.equal(r.status?.phase, "Failed");
      const failed = r.status?.conditions?.find((c) => c.type === "Failed");
      assert.equal(failed?.reason, "BackupNotFound");
      assert.match(failed?.message ?? "", /FederatedBackup .*\/nightyl does not exist/);
    });
  });

  // Applied together with its backup (one kubectl apply -f of both, one GitOps sync), a restore waits for the
  // backup to finish (spec.waitForBackup) instead of failing with BackupNotFinished.
  it("waits for a backup applied together with it, then restores from it once it has finished", async () => {
    const vms: VmFixture[] = [
      { name: "w1", node: "node-b" },
      { name: "w2", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      const ns = s.env.namespace;
      // Created one after the other, the backup first, as kubectl apply -f creates a file's objects.
      await adminClient().create(Resources.FederatedBackup, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "FederatedBackup",
        metadata: { name: "together", namespace: ns },
        spec: {
          sharedVolume: { claimName: s.env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
          location: { persistentVolumeClaim: { claimName: s.env.location.claimName } },
          snapshot: { method: "Copy" },
        },
      } as KubeObject);
      await adminClient().create(Resources.WorkloadRestore, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "WorkloadRestore",
        metadata: { name: "with-backup", namespace: ns },
        spec: { backupRef: { name: "together" } },
      } as KubeObject);

      const waiting = await waitFor("the restore to wait for its backup", 60_000, async () => {
        const r = await adminClient().get<Restore>(Resources.WorkloadRestore, ns, "with-backup");
        const progressing = r.status?.conditions?.find((c) => c.type === "Progressing");
        return progressing?.reason === "WaitingForBackup" ? r : undefined;
      });
      assert.equal(waiting.spec.waitForBackup, "1h", "the CRD's default");
      assert.equal(waiting.status?.phase, "New");
      assert.match(
        waiting.status?.conditions?.find((c) => c.type === "Progressing")?.message ?? "",
        new RegExp(
          `^waiting for FederatedBackup ${ns}/together \\((New|InProgress|Verifying)\\) to finish, until .* \\(spec\\.waitForBackup 1h\\)$`,
        ),
      );
      assert.deepEqual(restoreJobs(s, "with-backup"), [], "nothing runs while the backup does");

      const r = await waitForRestore(s.env.namespace, "with-backup", 150_000);
      const b = await adminClient().get<Backup>(Resources.FederatedBackup, ns, "together");
      assert.equal(b.status?.phase, "Completed", JSON.stringify(b.status?.conditions));
      assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.conditions));
      assert.deepEqual(r.status?.plan?.map((p) => `${p.name} ${p.backup}`).sort(), ["w1 together", "w2 together"]);
      // Its Jobs began after every Job of the backup had ended, and no two ran at once.
      const backupJobs = s.observer.jobs.filter((j) => j.name.startsWith("together-"));
      const jobs = restoreJobs(s, "with-backup");
      assert.ok(backupJobs.length >= 2, backupJobs.map((j) => j.name).join(", "));
      assert.deepEqual(jobs.map((j) => j.node).sort(), ["node-b", "node-c"]);
      const backupEnded = Math.max(...backupJobs.map((j) => j.finishedAt ?? Infinity));
      for (const job of jobs) assert.ok(job.createdAt >= backupEnded, `${job.name} began before the backup ended`);
      assert.deepEqual(s.observer.overlaps, []);
      for (const vm of vms) {
        assert.equal(resultOf(r, vm.name)?.phase, "Restored");
        assertRestored(s, vm);
        await assertRunsFreelyOn(s.env, vm.name, vm.node!);
      }
    });
  });

  it("never runs its Jobs while a backup of the same shared volume runs its own [long]", async () => {
    const vms: VmFixture[] = [
      { name: "v1", node: "node-b" },
      { name: "v2", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      for (const vm of vms) damage(s.env, vm);
      const [again, r] = await Promise.all([runBackup(s.env, "again"), restore(s.env, "beside", {})]);
      assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
      const jobs = s.observer.jobs.filter((j) => j.name.startsWith("again-") || j.name.startsWith("beside-"));
      // One restore Job per node. The backup has one per node with a VM running when it looked: a VM the
      // restore had stopped by then is not running, so not expected, and its node gets no Job.
      const backupJobs = jobs.filter((j) => j.name.startsWith("again-")).length;
      assert.equal(jobs.length - backupJobs, 2);
      assert.equal(backupJobs, again.status?.progress?.workloadsExpected);
      assert.ok(backupJobs >= 1);
      assert.deepEqual(s.observer.overlaps, []);
      for (const job of jobs) assert.deepEqual([...job.leaseHolders], [job.node]);
      for (const vm of vms) assertRestored(s, vm);
    });
  });

  it("gives the VMs it stopped back as they were when it is deleted mid-run", async () => {
    const vms: VmFixture[] = [
      { name: "g1", node: "node-b" },
      { name: "g2", node: "node-c" },
    ];
    await withBackup(vms, async (s) => {
      await adminClient().create(Resources.WorkloadRestore, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "WorkloadRestore",
        metadata: { name: "abandoned", namespace: s.env.namespace },
        spec: { backupRef: { name: "nightly" } },
      } as KubeObject);
      await waitFor("a VM stopped by the restore", 60_000, async () => {
        const vm = await vmObject(s.env, "g1");
        return vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD] && vm.spec.runStrategy === "Halted"
          ? true
          : undefined;
      });
      await adminClient().delete(Resources.WorkloadRestore, s.env.namespace, "abandoned");
      await waitFor("the WorkloadRestore to go", 60_000, async () =>
        (await adminClient().list(Resources.WorkloadRestore, { namespace: s.env.namespace })).items.length === 0
          ? true
          : undefined,
      );
      for (const vm of vms) await assertRunsFreelyOn(s.env, vm.name, vm.node!);
    });
  });

  it("survives the operator being killed mid-restore with the result of an uninterrupted run", async () => {
    const vms: VmFixture[] = [
      { name: "r1", node: "node-b" },
      { name: "r2", node: "node-b" },
      { name: "r3", node: "node-c" },
      { name: "r4", node: "node-c" },
    ];
    await withBackup(
      vms,
      async (s) => {
        let operator = await startOperatorProcess();
        await runBackup(s.env);
        for (const vm of vms) damage(s.env, vm);
        const startsBefore = new Map(vms.map((vm) => [vm.name, s.sim.history(s.env.namespace, vm.name).length]));
        await adminClient().create(Resources.WorkloadRestore, {
          apiVersion: "fedbackup.io/v1alpha1",
          kind: "WorkloadRestore",
          metadata: { name: "killed", namespace: s.env.namespace },
          spec: { backupRef: { name: "nightly" } },
        } as KubeObject);
        // Killed while the first node's VMs stop, while its Job runs, and while the second node's VMs start.
        const held = async () => {
          const list = await adminClient().list<VirtualMachine>(Resources.VirtualMachine, {
            namespace: s.env.namespace,
          });
          return list.items.filter((v) => v.metadata.annotations?.[ANNOTATION_RESTORE_HOLD]).length;
        };
        await waitFor("a VM held", 60_000, async () => ((await held()) > 0 ? true : undefined));
        await operator.kill();
        operator = await startOperatorProcess();
        await waitFor("the first restore Job", 60_000, () => (restoreJobs(s, "killed").length > 0 ? true : undefined));
        await operator.kill();
        operator = await startOperatorProcess();
        await waitFor("the second restore Job to finish", 90_000, () =>
          restoreJobs(s, "killed").filter((j) => j.finishedAt).length === 2 ? true : undefined,
        );
        await operator.kill();
        operator = await startOperatorProcess();
        const r = await waitForRestore(s.env.namespace, "killed", 150_000);
        await operator.kill();

        assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
        assert.equal(r.status?.progress?.restored, "4/4");
        const jobs = restoreJobs(s, "killed");
        assert.equal(jobs.length, 2, "one Job per node");
        assert.deepEqual(s.observer.overlaps, []);
        for (const vm of vms) {
          assertRestored(s, vm);
          await assertRunsFreelyOn(s.env, vm.name, vm.node!);
          // Stopped once and started once by the restore, however often the operator was killed.
          const events = s.sim.history(s.env.namespace, vm.name).slice(startsBefore.get(vm.name));
          assert.deepEqual(
            events.map((e) => e.event),
            ["Stopped", "Started"],
            `${vm.name}: ${JSON.stringify(events)}`,
          );
        }
      },
      { inProcessOperator: false },
    );
  });
});
