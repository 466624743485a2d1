import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot, WorkloadRestore } from "../../../src/api/v1alpha1/index.js";
import { backupPath, buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import { resolveWorkloads, type Resolution } from "../../../src/controllers/workloadrestore/resolve.js";
import type { ObservedWorkload } from "../../../src/planning/index.js";

const NOW = Date.parse("2026-11-25T12:00:00Z");

type Phase = NonNullable<FederatedBackup["status"]>["phase"];

interface BackupFields {
  namespace?: string;
  uid?: string;
  shared?: string;
  location?: string;
  completionTime?: string;
}

function backup(name: string, phase: Phase | undefined, f: BackupFields = {}): FederatedBackup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: f.namespace ?? "vms", uid: f.uid ?? `${name}-0123456789` },
    spec: {
      sharedVolume: { claimName: f.shared ?? "vmdisks", nodeMountPath: "/disks" },
      location: { persistentVolumeClaim: { claimName: f.location ?? "backups" } },
    },
    ...(phase ? { status: { phase, ...(f.completionTime ? { completionTime: f.completionTime } : {}) } } : {}),
  };
}

const observed = (key: string): ObservedWorkload => {
  const [namespace = "", name = ""] = key.split("/");
  return {
    namespace,
    name,
    uid: name,
    phase: "Running",
    migrating: false,
    critical: false,
    priority: 0,
    files: [`${key}/disk.img`],
  };
};

/** A step of `b` on `node` in `round` that captured the VMs ("namespace/name"). */
function snap(b: FederatedBackup, round: number, node: string, captured: string[], completionTime?: string) {
  const step = buildNodeSnapshot(b, round, 1, node, captured.map(observed));
  step.status = {
    phase: "Succeeded",
    captured: captured.map((k) => {
      const [namespace = "", name = ""] = k.split("/");
      return { namespace, name };
    }),
    ...(completionTime ? { completionTime } : {}),
  };
  return step;
}

function restore(spec: WorkloadRestore["spec"] = { backupRef: { name: "nightly" } }): WorkloadRestore {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name: "r1", namespace: "vms", uid: "uid-r1", generation: 1 },
    spec,
  };
}

/** spec.workloads entries for "namespace/name" keys. */
const list = (...keys: string[]): NonNullable<WorkloadRestore["spec"]["workloads"]> =>
  keys.map((k) => {
    const [namespace = "", name = ""] = k.split("/");
    return { namespace, name };
  });

const resolve = (r: WorkloadRestore, backups: FederatedBackup[], steps: NodeSnapshot[]): Resolution =>
  resolveWorkloads(r, backups, steps, NOW);

/** "namespace/name backup@originalNode" per resolved VM. */
const summary = (res: Resolution): string[] =>
  res.workloads.map((w) => `${w.namespace}/${w.name} ${w.backup}@${w.originalNode ?? "-"}`);

describe("resolveWorkloads", () => {
  const nightly = backup("nightly", "Completed");
  const steps = [snap(nightly, 1, "n1", ["vms/b", "vms/a"]), snap(nightly, 1, "n2", ["vms/c"])];

  describe("spec.backupRef", () => {
    // Regression: at a928783 the VMs listed from the backup's captures carried no `backup`, so with an empty
    // spec.workloads every VM came out unrestorable ("no finished FederatedBackup ... holds a capture") and the
    // restore failed with NothingToRestore.
    it("restores every VM the backup captured when spec.workloads is empty, sorted, with the capture's volumes", () => {
      const res = resolve(restore(), [nightly], steps);
      assert.equal(res.invalid, undefined);
      assert.deepEqual(res.unrestorable, []);
      assert.deepEqual(res.workloads, [
        {
          namespace: "vms",
          name: "a",
          backup: "nightly",
          originalNode: "n1",
          backupPath: backupPath(nightly),
          sharedClaim: "vmdisks",
          nodeMountPath: "/disks",
          location: { persistentVolumeClaim: { claimName: "backups" } },
          capture: { files: ["vms/a/disk.img"], claims: [], definition: false },
        },
        {
          namespace: "vms",
          name: "b",
          backup: "nightly",
          originalNode: "n1",
          backupPath: backupPath(nightly),
          sharedClaim: "vmdisks",
          nodeMountPath: "/disks",
          location: { persistentVolumeClaim: { claimName: "backups" } },
          capture: { files: ["vms/b/disk.img"], claims: [], definition: false },
        },
        {
          namespace: "vms",
          name: "c",
          backup: "nightly",
          originalNode: "n2",
          backupPath: backupPath(nightly),
          sharedClaim: "vmdisks",
          nodeMountPath: "/disks",
          location: { persistentVolumeClaim: { claimName: "backups" } },
          capture: { files: ["vms/c/disk.img"], claims: [], definition: false },
        },
      ]);
    });

    it("restores a VM captured in two rounds from the latest round (its node there is the original node)", () => {
      const moved = [...steps, snap(nightly, 2, "n3", ["vms/a"])];
      const r = restore({ backupRef: { name: "nightly" }, workloads: list("vms/c", "vms/a", "vms/b") });
      assert.deepEqual(summary(resolve(r, [nightly], moved)), [
        "vms/a nightly@n3",
        "vms/b nightly@n1",
        "vms/c nightly@n2",
      ]);
      // The round decides, not the order the steps are listed in.
      assert.deepEqual(summary(resolve(r, [nightly], [...moved].reverse())), [
        "vms/a nightly@n3",
        "vms/b nightly@n1",
        "vms/c nightly@n2",
      ]);
    });

    it("lists a VM captured in two rounds once when spec.workloads is empty", () => {
      const moved = [...steps, snap(nightly, 2, "n3", ["vms/a"])];
      assert.deepEqual(summary(resolve(restore(), [nightly], moved)), [
        "vms/a nightly@n3",
        "vms/b nightly@n1",
        "vms/c nightly@n2",
      ]);
    });

    it("restores only the VMs listed, keeping their targetNode", () => {
      const res = resolve(
        restore({ backupRef: { name: "nightly" }, workloads: [{ namespace: "vms", name: "c", targetNode: "n9" }] }),
        [nightly],
        steps,
      );
      assert.deepEqual(summary(res), ["vms/c nightly@n2"]);
      assert.equal(res.workloads[0]?.targetNode, "n9");
      assert.equal(res.workloads[0]?.originalNode, "n2");
    });

    it("leaves a listed VM the backup did not capture unrestorable, with the reason", () => {
      const res = resolve(
        restore({
          backupRef: { name: "nightly" },
          workloads: [
            { namespace: "vms", name: "zz" },
            { namespace: "vms", name: "a" },
          ],
        }),
        [nightly],
        steps,
      );
      assert.deepEqual(summary(res), ["vms/a nightly@n1"]);
      assert.deepEqual(res.unrestorable, [
        {
          namespace: "vms",
          name: "zz",
          backup: "nightly",
          reason: "NotCaptured",
          message: "Skipped: FederatedBackup nightly holds no capture of vms/zz.",
        },
      ]);
      assert.equal(res.invalid, undefined);
    });

    it("ignores the steps of an earlier backup of the same name (another UID)", () => {
      const old = backup("nightly", "Completed", { uid: "old-uid" });
      const r = restore({ backupRef: { name: "nightly" }, workloads: list("vms/a", "vms/old") });
      const res = resolve(r, [nightly], [...steps, snap(old, 5, "n7", ["vms/old", "vms/a"])]);
      assert.deepEqual(summary(res), ["vms/a nightly@n1"]);
      assert.deepEqual(
        res.unrestorable.map((u) => u.name),
        ["old"],
      );
    });

    it("a PartiallyFailed backup can be restored from", () => {
      const partial = backup("nightly", "PartiallyFailed");
      const r = restore({ backupRef: { name: "nightly" }, workloads: list("vms/a") });
      assert.deepEqual(summary(resolve(r, [partial], [snap(partial, 1, "n1", ["vms/a"])])), ["vms/a nightly@n1"]);
    });
  });

  describe("per-workload backupRef", () => {
    const weekly = backup("weekly", "Completed");
    const weeklySteps = [snap(weekly, 1, "n4", ["vms/a", "vms/b"])];

    it("overrides spec.backupRef for that VM only", () => {
      const res = resolve(
        restore({
          backupRef: { name: "nightly" },
          workloads: [
            { namespace: "vms", name: "a", backupRef: { name: "weekly" } },
            { namespace: "vms", name: "b" },
          ],
        }),
        [nightly, weekly],
        [...steps, ...weeklySteps],
      );
      assert.deepEqual(summary(res), ["vms/a weekly@n4", "vms/b nightly@n1"]);
      assert.equal(res.workloads[0]?.backupPath, backupPath(weekly));
      assert.equal(res.workloads[1]?.backupPath, backupPath(nightly));
    });

    it("works without spec.backupRef when every workload names its backup", () => {
      const res = resolve(
        restore({
          workloads: [
            { namespace: "vms", name: "c", backupRef: { name: "nightly" } },
            { namespace: "vms", name: "b", backupRef: { name: "weekly" } },
          ],
        }),
        [nightly, weekly],
        [...steps, ...weeklySteps],
      );
      assert.deepEqual(summary(res), ["vms/b weekly@n4", "vms/c nightly@n2"]);
    });
  });

  describe("a request that cannot be served as a whole", () => {
    const cases: Array<{
      title: string;
      spec: WorkloadRestore["spec"];
      backups: FederatedBackup[];
      steps?: NodeSnapshot[];
      reason: string;
      message: RegExp;
    }> = [
      {
        title: "spec.backupRef names no backup",
        spec: { backupRef: { name: "nope" } },
        backups: [nightly],
        reason: "BackupNotFound",
        message: /^FederatedBackup vms\/nope does not exist$/,
      },
      {
        title: "a workload's backupRef names no backup",
        spec: {
          backupRef: { name: "nightly" },
          workloads: [{ namespace: "vms", name: "a", backupRef: { name: "gone" } }],
        },
        backups: [nightly],
        reason: "BackupNotFound",
        message: /vms\/gone does not exist/,
      },
      {
        title: "the backup of that name lives in another namespace",
        spec: { backupRef: { name: "nightly" } },
        backups: [backup("nightly", "Completed", { namespace: "other" })],
        reason: "BackupNotFound",
        message: /vms\/nightly does not exist/,
      },
      {
        title: "the backup failed",
        spec: { backupRef: { name: "nightly" } },
        backups: [backup("nightly", "Failed")],
        reason: "BackupFailed",
        message:
          /^FederatedBackup vms\/nightly is Failed; only a Completed or PartiallyFailed backup can be restored from$/,
      },
      // Every problem is reported: a backup still running must not hide that another does not exist.
      {
        title: "one backup is still running and another does not exist",
        spec: {
          backupRef: { name: "nightly" },
          workloads: [{ namespace: "vms", name: "a", backupRef: { name: "typo" } }],
        },
        backups: [backup("nightly", "InProgress")],
        reason: "BackupNotFound",
        message:
          /^2 problems: FederatedBackup vms\/typo does not exist; FederatedBackup vms\/nightly is InProgress, not finished yet$/,
      },
      {
        title: "three backups, each with its problem, the ones that fail the restore first",
        spec: {
          backupRef: { name: "a-running" },
          workloads: [
            { namespace: "vms", name: "a", backupRef: { name: "b-failed" } },
            { namespace: "vms", name: "b", backupRef: { name: "c-gone" } },
          ],
        },
        backups: [backup("a-running", "Verifying"), backup("b-failed", "Failed")],
        reason: "BackupFailed",
        message:
          /^3 problems: FederatedBackup vms\/b-failed is Failed; .*; FederatedBackup vms\/c-gone does not exist; FederatedBackup vms\/a-running is Verifying, not finished yet$/,
      },
      {
        title: "the backup captured nothing",
        spec: { backupRef: { name: "nightly" } },
        backups: [backup("nightly", "PartiallyFailed")],
        steps: [],
        reason: "NothingToRestore",
        message: /holds no captured VM/,
      },
    ];
    for (const c of cases) {
      it(`${c.title} → ${c.reason}, nothing resolved`, () => {
        const res = resolve(restore(c.spec), c.backups, c.steps ?? steps);
        assert.deepEqual(res.workloads, []);
        assert.deepEqual(res.unrestorable, []);
        assert.equal(res.invalid?.reason, c.reason);
        assert.match(res.invalid?.message ?? "", c.message);
      });
    }

    it("checks the named backups in name order, so the message is stable, and names each one", () => {
      const res = resolve(
        restore({
          backupRef: { name: "zeta" },
          workloads: [{ namespace: "vms", name: "a", backupRef: { name: "alpha" } }],
        }),
        [],
        [],
      );
      assert.equal(
        res.invalid?.message,
        "2 problems: FederatedBackup vms/alpha does not exist; FederatedBackup vms/zeta does not exist",
      );
    });
  });

  it("names at most 20 backups in its message, and counts the rest", () => {
    const names = Array.from({ length: 25 }, (_, i) => `b${String(i).padStart(2, "0")}`);
    const res = resolve(
      restore({ workloads: names.map((name, i) => ({ namespace: "vms", name: `vm${i}`, backupRef: { name } })) }),
      [],
      [],
    );
    assert.equal(res.invalid?.reason, "BackupNotFound");
    assert.match(
      res.invalid?.message ?? "",
      /^25 problems: FederatedBackup vms\/b00 does not exist; .*vms\/b19 does not exist; and 5 more$/,
    );
    assert.doesNotMatch(res.invalid?.message ?? "", /b20/);
  });

  // A restore applied together with its backup waits for it (spec.waitForBackup, decided by decideRestore).
  describe("a backup named that is not finished yet", () => {
    const cases: Array<{
      title: string;
      spec: WorkloadRestore["spec"];
      backups: FederatedBackup[];
      unfinished: string[];
    }> = [
      {
        title: "the backup is still running",
        spec: { backupRef: { name: "nightly" } },
        backups: [backup("nightly", "InProgress")],
        unfinished: ["nightly InProgress"],
      },
      {
        title: "the backup has no status yet",
        spec: { backupRef: { name: "nightly" } },
        backups: [backup("nightly", undefined)],
        unfinished: ["nightly New"],
      },
      {
        title: "a workload's backup is not finished, though spec.backupRef is",
        spec: {
          backupRef: { name: "nightly" },
          workloads: [{ namespace: "vms", name: "a", backupRef: { name: "weekly" } }],
        },
        backups: [nightly, backup("weekly", "Verifying")],
        unfinished: ["weekly Verifying"],
      },
      {
        title: "two backups still running, in name order",
        spec: {
          backupRef: { name: "zeta" },
          workloads: [{ namespace: "vms", name: "a", backupRef: { name: "alpha" } }],
        },
        backups: [backup("zeta", "Reconciling"), backup("alpha", "New")],
        unfinished: ["alpha New", "zeta Reconciling"],
      },
    ];
    for (const c of cases) {
      it(`${c.title}: nothing resolved, nothing invalid, the backups to wait for`, () => {
        const res = resolve(restore(c.spec), c.backups, steps);
        assert.deepEqual(res.workloads, []);
        assert.deepEqual(res.unrestorable, []);
        assert.equal(res.invalid, undefined);
        assert.deepEqual(
          res.unfinished?.map((u) => `${u.name} ${u.phase}`),
          c.unfinished,
        );
      });
    }
  });

  describe("source Latest", () => {
    const older = backup("monday", "Completed", { completionTime: "2026-11-23T01:00:00Z" });
    const newer = backup("tuesday", "Completed", { completionTime: "2026-11-24T01:00:00Z" });
    const running = backup("wednesday", "InProgress");
    const latestSteps = [
      snap(older, 1, "n1", ["vms/a", "vms/b"], "2026-11-23T01:00:00Z"),
      snap(newer, 1, "n2", ["vms/a"], "2026-11-24T01:00:00Z"),
      // A capture of a backup still running does not count, however recent.
      snap(running, 1, "n3", ["vms/a", "vms/c"], "2026-11-25T01:00:00Z"),
    ];

    it("restores every VM ever captured in a finished backup, each from its most recent capture", () => {
      const res = resolve(restore({ source: "Latest" }), [older, newer, running], latestSteps);
      assert.deepEqual(summary(res), ["vms/a tuesday@n2", "vms/b monday@n1"]);
      assert.equal(res.workloads[0]?.backupPath, backupPath(newer));
      assert.deepEqual(res.unrestorable, []);
    });

    it("the capture time decides, not the backup's name", () => {
      const late = backup("aaa", "Completed", { completionTime: "2026-11-24T09:00:00Z" });
      const res = resolve(
        restore({ source: "Latest" }),
        [older, newer, late],
        [...latestSteps, snap(late, 1, "n5", ["vms/b"], "2026-11-24T09:00:00Z")],
      );
      assert.deepEqual(summary(res), ["vms/a tuesday@n2", "vms/b aaa@n5"]);
    });

    it("with listed workloads, a VM no finished backup captured is unrestorable", () => {
      const res = resolve(
        restore({
          source: "Latest",
          workloads: [
            { namespace: "vms", name: "c" },
            { namespace: "vms", name: "b", targetNode: "n8" },
          ],
        }),
        [older, newer, running],
        latestSteps,
      );
      assert.deepEqual(summary(res), ["vms/b monday@n1"]);
      assert.equal(res.workloads[0]?.targetNode, "n8");
      assert.deepEqual(res.unrestorable, [
        {
          namespace: "vms",
          name: "c",
          backup: "",
          reason: "NotCaptured",
          message: "Skipped: no finished FederatedBackup in vms holds a capture of vms/c.",
        },
      ]);
    });

    it("without any finished capture there is nothing to restore", () => {
      const res = resolve(restore({ source: "Latest" }), [running], latestSteps);
      assert.equal(res.invalid?.reason, "NothingToRestore");
    });
  });

  describe("one shared volume and one location per restore", () => {
    it("keeps the VMs on the volumes most captures use and leaves the others out, saying why", () => {
      const elsewhere = backup("other", "Completed", { shared: "disks2", location: "backups2" });
      const res = resolve(
        restore({
          backupRef: { name: "nightly" },
          workloads: [
            { namespace: "vms", name: "a" },
            { namespace: "vms", name: "b" },
            { namespace: "vms", name: "x", backupRef: { name: "other" } },
          ],
        }),
        [nightly, elsewhere],
        [...steps, snap(elsewhere, 1, "n1", ["vms/x"])],
      );
      assert.deepEqual(summary(res), ["vms/a nightly@n1", "vms/b nightly@n1"]);
      assert.deepEqual(res.unrestorable, [
        {
          namespace: "vms",
          name: "x",
          backup: "other",
          reason: "OtherVolumes",
          message:
            "Skipped: its capture in other uses shared volume disks2 and location PersistentVolumeClaim backups2, the other VMs vmdisks and PersistentVolumeClaim backups; " +
            "restore it with a WorkloadRestore of its own.",
        },
      ]);
    });

    it("breaks a tie between volumes by name", () => {
      const elsewhere = backup("other", "Completed", { shared: "aaa-disks" });
      const res = resolve(
        restore({
          workloads: [
            { namespace: "vms", name: "a", backupRef: { name: "nightly" } },
            { namespace: "vms", name: "x", backupRef: { name: "other" } },
          ],
        }),
        [nightly, elsewhere],
        [...steps, snap(elsewhere, 1, "n1", ["vms/x"])],
      );
      assert.deepEqual(summary(res), ["vms/x other@n1"]);
      assert.deepEqual(
        res.unrestorable.map((u) => [u.name, u.backup]),
        [["a", "nightly"]],
      );
      assert.match(
        res.unrestorable[0]?.message ?? "",
        /uses shared volume vmdisks and location PersistentVolumeClaim backups, the other VMs aaa-disks/,
      );
    });

    it("a location of its own is a different volume pair too", () => {
      const elsewhere = backup("other", "Completed", { location: "offsite" });
      const res = resolve(
        restore({
          backupRef: { name: "nightly" },
          workloads: [
            { namespace: "vms", name: "a" },
            { namespace: "vms", name: "b" },
            { namespace: "vms", name: "x", backupRef: { name: "other" } },
          ],
        }),
        [nightly, elsewhere],
        [...steps, snap(elsewhere, 1, "n1", ["vms/x"])],
      );
      assert.deepEqual(
        res.unrestorable.map((u) => u.name),
        ["x"],
      );
    });
  });

  it("every listed VM unrestorable: no workloads, the reasons, and no invalid (the plan fails it)", () => {
    const res = resolve(
      restore({ backupRef: { name: "nightly" }, workloads: [{ namespace: "vms", name: "zz" }] }),
      [nightly],
      steps,
    );
    assert.deepEqual(res.workloads, []);
    assert.equal(res.unrestorable.length, 1);
    assert.equal(res.invalid, undefined);
  });

  it("a capture kept only in a CSI VolumeSnapshot (extractAt Restore) is unrestorable, with the reason", () => {
    const csi = backup("csi", "Completed");
    csi.spec.snapshot = { method: "CSI", volumeSnapshotClassName: "hostpath" };
    csi.spec.extractAt = "Restore";
    const res = resolve(restore({ backupRef: { name: "csi" } }), [csi], [snap(csi, 1, "n1", ["vms/a"])]);
    assert.deepEqual(res.workloads, []);
    assert.deepEqual(
      res.unrestorable.map((u) => u.name),
      ["a"],
    );
    assert.equal(res.unrestorable[0]!.reason, "VolumeSnapshotOnly");
    assert.match(res.unrestorable[0]!.message, /VolumeSnapshot csi-r1-n1 .* not supported yet/);
  });
});
