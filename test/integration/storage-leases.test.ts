// Runs are serialized by storage back end, not by the shared volume alone: two backups of VMs on claims of
// one StorageClass never run node steps at once (one Lease per StorageClass), a backup of another
// StorageClass runs beside them, and a backup without spec.sharedVolume captures its claim VMs (and reports
// a hostDisk VM NoSharedDisk) with Jobs that mount no shared volume; a restore from it holds the Lease of
// its claims' StorageClass.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { backupFilesystemDiskPath } from "../../src/agent/manifest.js";
import type { FederatedBackup, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { storageLeaseName, viewLease, type LeaseObject } from "../../src/k8s/volume-lease.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVirtualMachine,
  createVm,
  type VmFixture,
} from "../harness/workloads.js";
import { waitForBound } from "../harness/block-volumes.js";
import { BackupObserver, type JobRecord } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  kubevirtDouble,
  OPERATOR_NAMESPACE,
  podRunner,
  startOperator,
  waitFor,
} from "./operator-env.js";

const MiB = 1024 * 1024;

const onClaim = (name: string, node: string, storageClassName: string): VmFixture => ({
  name,
  node,
  claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 2 * MiB, storageClassName }],
});

/** Whether two Jobs' lifetimes overlap (a Job not finished yet lasts until now). */
const overlap = (a: JobRecord, b: JobRecord): boolean =>
  a.createdAt < (b.finishedAt ?? Date.now()) && b.createdAt < (a.finishedAt ?? Date.now());

const ofBackup = (jobs: readonly JobRecord[], backup: string) => jobs.filter((j) => j.name.startsWith(`${backup}-r`));

describe("Storage back-end Leases", function () {
  this.timeout(300_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  after(() => cleanupClaimDisks());

  // Eight VMs in four backups that must overlap: a long scenario (make test-long). make test's short form of the
  // Leases is the next test (a restore holds its claims' StorageClass Lease and gives it back); the Lease's
  // decisions are unit-tested (test/unit/controllers/lease-state.test.ts, storage-keys.test.ts).
  it("[long] serializes two backups of one StorageClass, runs one of another beside them, and backs up claims without a shared volume", async () => {
    const env = await backupEnv("leases");
    const vms: VmFixture[] = [
      onClaim("fast-a1", "node-a", "fast"),
      onClaim("fast-a2", "node-b", "fast"),
      onClaim("fast-a3", "node-c", "fast"),
      onClaim("fast-b1", "node-a", "fast"),
      onClaim("fast-b2", "node-b", "fast"),
      onClaim("slow-1", "node-a", "slow"),
      onClaim("slow-2", "node-c", "slow"),
      { name: "host-1", node: "node-b" },
    ];
    const fastLease = storageLeaseName("storageclass/fast");
    // Who held the fast StorageClass's Lease whenever a Job of the slow backup appeared.
    const fastHoldersAtSlowJobs: string[] = [];
    const observer = new BackupObserver([env.namespace], async (job, event) => {
      if (event !== "created" || !job.name.startsWith("slow-r")) return;
      const lease = await adminClient()
        .get<LeaseObject>(Resources.Lease, OPERATOR_NAMESPACE, fastLease)
        .catch(() => undefined);
      fastHoldersAtSlowJobs.push(viewLease(lease)?.owner ?? "");
    });
    await observer.start();
    const operator = await startOperator();
    const names = (...n: string[]) => ({ names: n.map((name) => ({ name })) });
    try {
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      for (const vm of vms)
        for (const d of claimDisksOf(env.namespace, vm.name))
          await waitForBound(adminClient(), env.namespace, d.claimName);

      // fast-1 first, on three nodes; once its first Job runs (and it holds the fast Lease), fast-2 of the same
      // StorageClass and slow, of another and without a shared volume.
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "fast-1", { workloads: names("fast-a1", "fast-a2", "fast-a3") }),
      );
      await waitFor("fast-1's first Job", 60_000, () => ofBackup(observer.jobs, "fast-1")[0]);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "fast-2", { workloads: names("fast-b1", "fast-b2") }),
      );
      const slow = backupManifest(env, "slow", { workloads: names("slow-1", "slow-2") });
      delete (slow.spec as Partial<FederatedBackup["spec"]>).sharedVolume;
      await adminClient().create(Resources.FederatedBackup, slow);
      const hostOnly = backupManifest(env, "host-only", { workloads: names("host-1") });
      delete (hostOnly.spec as Partial<FederatedBackup["spec"]>).sharedVolume;
      await adminClient().create(Resources.FederatedBackup, hostOnly);

      const done = new Map<string, FederatedBackup & KubeObject>();
      for (const name of ["fast-1", "fast-2", "slow", "host-only"])
        done.set(name, await backupFinished(env.namespace, name, 240_000));
      const report = JSON.stringify(
        [...done.values()].map((b) => [b.metadata.name, b.status?.phase, b.status?.missing]),
        null,
        1,
      );
      for (const name of ["fast-1", "fast-2", "slow"]) assert.equal(done.get(name)?.status?.phase, "Completed", report);

      // Each lists the back ends it serialized on; VMs on claims only: no shared volume among them.
      assert.deepEqual(done.get("fast-1")?.status?.storageBackends, ["storageclass/fast"]);
      assert.deepEqual(done.get("fast-2")?.status?.storageBackends, ["storageclass/fast"]);
      assert.deepEqual(done.get("slow")?.status?.storageBackends, ["storageclass/slow"]);

      // No node step of fast-1 ran while one of fast-2 did.
      const fast1 = ofBackup(observer.jobs, "fast-1");
      const fast2 = ofBackup(observer.jobs, "fast-2");
      const slowJobs = ofBackup(observer.jobs, "slow");
      assert.equal(fast1.length, 3);
      assert.equal(fast2.length, 2);
      assert.equal(slowJobs.length, 2);
      for (const a of fast1)
        for (const b of fast2) assert.ok(!overlap(a, b), `${a.name} and ${b.name} ran at the same time`);
      // slow ran while a fast backup held its StorageClass's Lease, and beside a fast Job.
      assert.ok(
        fastHoldersAtSlowJobs.some((owner) => /^FederatedBackup\/[^/]+\/fast-[12]\//.test(owner)),
        `the fast Lease's owners when slow's Jobs appeared: ${JSON.stringify(fastHoldersAtSlowJobs)}`,
      );
      assert.ok(
        slowJobs.some((s) => [...fast1, ...fast2].some((f) => overlap(s, f))),
        "a Job of slow ran beside a Job of a fast backup",
      );

      // Without a shared volume: the Jobs mount none, the claims are captured byte for byte, and a hostDisk
      // VM is NoSharedDisk, saying that no sharedVolume is set.
      const job = await adminClient().get<
        KubeObject & { spec: { template: { spec: { volumes: { name: string }[] } } } }
      >(Resources.Job, env.namespace, slowJobs[0]!.name);
      assert.ok(!job.spec.template.spec.volumes.some((v) => v.name === "shared"), "no shared volume mounted");
      const backupDir = path.join(env.location.hostDir, done.get("slow")!.status!.backupPath!);
      for (const vm of ["slow-1", "slow-2"]) {
        const [disk] = claimDisksOf(env.namespace, vm);
        const copy = readFileSync(path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm, disk!.volumeName)));
        assert.ok(copy.equals(readFileSync(disk!.path)), `${vm}'s claim differs`);
      }
      const hostOnlyDone = done.get("host-only")!;
      assert.equal(hostOnlyDone.status?.phase, "Failed", report);
      assert.deepEqual(
        (hostOnlyDone.status?.missing ?? []).map((m) => [m.name, m.reason]),
        [["host-1", "NoSharedDisk"]],
      );
      assert.match(hostOnlyDone.status?.missing?.[0]?.message ?? "", /no spec\.sharedVolume is set/);

      // Every Lease is given back at the end.
      const lease = await adminClient().get<LeaseObject>(Resources.Lease, OPERATOR_NAMESPACE, fastLease);
      assert.equal(viewLease(lease)?.owner, undefined);
    } finally {
      await operator.stop();
      await observer.stop();
      await cleanupClaimDisks(env.namespace);
      env.cleanup();
    }
  });
  it("restores VMs on claims from a backup without a shared volume, under their StorageClass's Lease", async () => {
    const env = await backupEnv("leases-restore");
    const sim = new SimulatedVmController(adminClient());
    await sim.start();
    const operator = await startOperator();
    try {
      const vm = onClaim("db", "node-b", "slow");
      await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, vm);
      const [disk] = claimDisksOf(env.namespace, "db");
      await waitForBound(adminClient(), env.namespace, disk!.claimName);
      const atBackup = readFileSync(disk!.path);
      const manifest = backupManifest(env, "nightly", { workloads: { names: [{ name: "db" }] } });
      delete (manifest.spec as Partial<FederatedBackup["spec"]>).sharedVolume;
      await adminClient().create(Resources.FederatedBackup, manifest);
      const fb = await backupFinished(env.namespace, "nightly", 120_000);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.missing));

      writeFileSync(disk!.path, randomBytes(atBackup.length));
      await adminClient().create(Resources.WorkloadRestore, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "WorkloadRestore",
        metadata: { name: "back", namespace: env.namespace },
        spec: { backupRef: { name: "nightly" } },
      } as KubeObject);
      const restored = await waitFor("WorkloadRestore back to finish", 120_000, async () => {
        const r = await adminClient().get<WorkloadRestore & KubeObject>(
          Resources.WorkloadRestore,
          env.namespace,
          "back",
        );
        return ["Completed", "PartiallyFailed", "Failed"].includes(r.status?.phase ?? "") ? r : undefined;
      });
      assert.equal(restored.status?.phase, "Completed", JSON.stringify(restored.status?.results));
      assert.deepEqual(restored.status?.storageBackends, ["storageclass/slow"]);
      assert.ok(readFileSync(disk!.path).equals(atBackup), "the claim holds the backed-up bytes again");
      const lease = await adminClient().get<LeaseObject>(
        Resources.Lease,
        OPERATOR_NAMESPACE,
        storageLeaseName("storageclass/slow"),
      );
      assert.equal(viewLease(lease)?.owner, undefined, "released at the end");
    } finally {
      await operator.stop();
      await sim.stop();
      await cleanupClaimDisks(env.namespace);
      env.cleanup();
    }
  });
});
