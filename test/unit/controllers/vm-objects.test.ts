import assert from "node:assert/strict";
import type { CreatedDisks, CreatedDisksProblem } from "../../../src/controllers/workloadrestore/created-disks.js";
import type { Resolution, ResolvedWorkload } from "../../../src/controllers/workloadrestore/resolve.js";
import { planVmObjects } from "../../../src/controllers/workloadrestore/vm-objects.js";

function workload(key: string, o: Partial<ResolvedWorkload> = {}): ResolvedWorkload {
  const [namespace = "", name = ""] = key.split("/");
  return {
    namespace,
    name,
    backup: "nightly",
    backupPath: "nightly-0123",
    sharedClaim: "vmdisks",
    nodeMountPath: "/disks",
    location: { persistentVolumeClaim: { claimName: "backups" } },
    capture: { files: [`${key}/disk0.img`], claims: [], definition: true },
    ...o,
  };
}

const resolution = (...workloads: ResolvedWorkload[]): Resolution => ({
  workloads,
  unrestorable: [{ namespace: "vms", name: "old", backup: "nightly", reason: "NotCaptured", message: "Skipped: x" }],
});

const disks = (key: string): CreatedDisks => ({ files: [`${key}/disk0.img`], renamedFiles: [], claims: [] });

describe("planVmObjects", () => {
  it("keeps or replaces an existing VM restored in place, as asked", () => {
    const r = resolution(workload("vms/db-0"));
    for (const choice of ["Keep", "Replace"] as const) {
      const plan = planVmObjects(r, new Map(), choice);
      assert.deepEqual([...plan.definition], [["vms/db-0", choice]]);
      assert.equal(plan.created.size, 0);
      assert.deepEqual(plan.resolution.workloads, r.workloads);
      assert.deepEqual(plan.resolution.unrestorable, r.unrestorable);
    }
  });

  it("creates a missing VM with the disks it is given", () => {
    const plan = planVmObjects(resolution(workload("vms/db-0")), new Map([["vms/db-0", disks("vms/db-0")]]), "Keep");
    assert.deepEqual([...plan.definition], [["vms/db-0", "Create"]]);
    assert.deepEqual([...plan.created], [["vms/db-0", disks("vms/db-0")]]);
    assert.equal(plan.resolution.workloads.length, 1);
  });

  it("never writes a copy over an existing VM (TargetExists)", () => {
    const copy = workload("vms/db-0-copy", { source: { namespace: "vms", name: "db-0" } });
    const plan = planVmObjects(resolution(copy), new Map(), "Replace");
    assert.deepEqual(plan.resolution.workloads, []);
    assert.equal(plan.definition.size, 0);
    const skipped = plan.resolution.unrestorable.at(-1)!;
    assert.equal(skipped.reason, "TargetExists");
    assert.equal(`${skipped.namespace}/${skipped.name}`, "vms/db-0-copy");
    assert.match(skipped.message, /^Skipped: .*vms\/db-0-copy.*vms\/db-0/);
  });

  it("creates a copy whose target does not exist", () => {
    const copy = workload("vms/db-0-copy", { source: { namespace: "vms", name: "db-0" } });
    const plan = planVmObjects(resolution(copy), new Map([["vms/db-0-copy", disks("vms/db-0-copy")]]), "Keep");
    assert.equal(plan.definition.get("vms/db-0-copy"), "Create");
  });

  it("skips a missing VM whose capture holds no definition (NoDefinition)", () => {
    const w = workload("vms/db-0", { capture: { files: [], claims: [], definition: false } });
    const plan = planVmObjects(resolution(w), new Map([["vms/db-0", disks("vms/db-0")]]), "Keep");
    assert.deepEqual(plan.resolution.workloads, []);
    assert.equal(plan.created.size, 0);
    assert.equal(plan.resolution.unrestorable.at(-1)!.reason, "NoDefinition");
  });

  it("passes a disk problem through as the reason it is skipped", () => {
    const p: CreatedDisksProblem = { problem: "DiskInUse", message: "Skipped: vms/db-0 would be created with ..." };
    const plan = planVmObjects(resolution(workload("vms/db-0")), new Map([["vms/db-0", p]]), "Keep");
    assert.deepEqual(plan.resolution.unrestorable.at(-1), {
      namespace: "vms",
      name: "db-0",
      backup: "nightly",
      reason: "DiskInUse",
      message: p.message,
    });
    assert.equal(plan.definition.size, 0);
  });

  it("decides each VM on its own and keeps the earlier unrestorable ones first", () => {
    const r = resolution(
      workload("vms/a"),
      workload("vms/b"),
      workload("vms/c", { source: { namespace: "vms", name: "a" } }),
    );
    const plan = planVmObjects(r, new Map([["vms/b", disks("vms/b")]]), "Replace");
    assert.deepEqual(
      plan.resolution.workloads.map((w) => w.name),
      ["a", "b"],
    );
    assert.deepEqual(
      [...plan.definition],
      [
        ["vms/a", "Replace"],
        ["vms/b", "Create"],
      ],
    );
    assert.deepEqual(
      plan.resolution.unrestorable.map((u) => [u.name, u.reason]),
      [
        ["old", "NotCaptured"],
        ["c", "TargetExists"],
      ],
    );
  });

  it("does not change the resolution it is given", () => {
    const r = resolution(workload("vms/db-0-copy", { source: { namespace: "vms", name: "db-0" } }));
    planVmObjects(r, new Map(), "Keep");
    assert.equal(r.workloads.length, 1);
    assert.equal(r.unrestorable.length, 1);
  });
});
