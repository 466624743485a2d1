import assert from "node:assert/strict";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import { nameOfDirectory, planSync } from "../../../src/controllers/backuplocation/sync-plan.js";
import { syncedBackup, syncedSteps } from "../../../src/controllers/backuplocation/synced-backup.js";
import { backupIndexOf, parseBackupIndex } from "../../../src/storage/backup-index.js";

const s3 = { endpoint: "http://s3:8333", bucket: "backups", prefix: "a", credentialsSecretRef: { name: "creds" } };
const location: BackupLocation = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "BackupLocation",
  metadata: { name: "offsite", namespace: "team" },
  spec: { s3 },
};

function backup(name: string, uid: string, phase: string, extra: Partial<FederatedBackup["metadata"]> = {}) {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: "team", uid, ...extra },
    spec: { locationRef: { name: "offsite" } },
    status: { phase },
  } as FederatedBackup;
}
function stepOf(b: FederatedBackup, where: object = { s3 }): NodeSnapshot {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "NodeSnapshot",
    metadata: { name: `${b.metadata.name}-r1-node-a`, namespace: "team" },
    spec: {
      backupName: b.metadata.name!,
      backupUID: b.metadata.uid!,
      node: "node-a",
      round: 1,
      order: 0,
      location: { ...where, path: `team/${b.metadata.name}-${b.metadata.uid!.slice(0, 8)}` },
      snapshot: { method: "Copy", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "5m" },
      extractAt: "Backup",
    },
    status: { phase: "Succeeded" },
  };
}
const synced = (name: string, uid: string) =>
  backup(name, uid, "Completed", {
    labels: { "fedbackup.io/synced": "true" },
    annotations: { "fedbackup.io/synced-from": "offsite" },
  });

describe("backup sync plan", () => {
  it("indexes this cluster's finished runs at this location once, and no other", () => {
    const done = backup("nightly", "11111111-x", "Completed");
    const partly = backup("weekly", "22222222-x", "PartiallyFailed");
    const running = backup("hourly", "33333333-x", "InProgress");
    const failed = backup("broken", "44444444-x", "Failed");
    const elsewhere = backup("onclaim", "55555555-x", "Completed");
    const indexed = backup("old", "66666666-x", "Completed");
    const backups = [done, partly, running, failed, elsewhere, indexed];
    const steps = [
      ...[done, partly, running, failed, indexed].map((b) => stepOf(b)),
      stepOf(elsewhere, { persistentVolumeClaim: { claimName: "backups" } }),
    ];
    const plan = planSync({ location, indexed: new Set(["team/old-66666666"]), backups, steps });
    assert.deepEqual(
      plan.push.map((p) => p.path),
      ["team/nightly-11111111", "team/weekly-22222222"],
    );
    assert.deepEqual(plan.pull, []);
    assert.deepEqual(plan.prune, []);
  });

  it("pulls the indexes the cluster has no backup for, leaves a taken name alone, prunes a synced copy whose index went", () => {
    const mine = backup("nightly", "11111111-x", "Completed");
    const copy = synced("gone", "77777777-x");
    const plan = planSync({
      location,
      indexed: new Set(["team/nightly-11111111", "team/lost-88888888", "team/nightly-99999999"]),
      backups: [mine, copy],
      steps: [stepOf(mine), stepOf(copy)],
    });
    assert.deepEqual(plan.pull, ["team/lost-88888888"]);
    assert.deepEqual(plan.conflicts, ["team/nightly-99999999"]);
    assert.deepEqual(
      plan.prune.map((b) => b.metadata.name),
      ["gone"],
    );
    assert.deepEqual(plan.push, []);
  });

  it("never pushes a synced backup's index, and never prunes one another location synced", () => {
    const other = backup("x", "12121212-x", "Completed", {
      labels: { "fedbackup.io/synced": "true" },
      annotations: { "fedbackup.io/synced-from": "another" },
    });
    const plan = planSync({ location, indexed: new Set(), backups: [other], steps: [stepOf(other)] });
    assert.deepEqual([plan.push, plan.prune], [[], []]);
  });

  it("reads the index again for a synced backup whose pull was cut short (no status or no steps yet)", () => {
    const noSteps = synced("half", "abababab-new");
    noSteps.metadata.annotations!["fedbackup.io/synced-uid"] = "12345678-old";
    const noStatus = synced("nostatus", "cdcdcdcd-new");
    noStatus.metadata.annotations!["fedbackup.io/synced-uid"] = "87654321-old";
    noStatus.status = {};
    const plan = planSync({
      location,
      indexed: new Set(["team/half-12345678", "team/nostatus-87654321"]),
      backups: [noSteps, noStatus],
      steps: [stepOf(noStatus)],
    });
    assert.deepEqual(plan.pull, ["team/half-12345678", "team/nostatus-87654321"]);
    assert.deepEqual([plan.conflicts, plan.prune], [[], []]);
    // Its index gone meanwhile: the half-made copy goes.
    const gone = planSync({ location, indexed: new Set(), backups: [noSteps], steps: [] });
    assert.deepEqual([gone.pull, gone.prune.map((b) => b.metadata.name)], [[], ["half"]]);
  });

  it("names the backup of a directory by cutting its uid off", () => {
    assert.equal(nameOfDirectory("team/nightly-0123abcd"), "nightly");
    assert.equal(nameOfDirectory("team/a-b-c-0123abcd"), "a-b-c");
    assert.equal(nameOfDirectory("team/nouid"), undefined);
  });
});

describe("synced backup objects", () => {
  const original = backup("nightly", "0123abcd-1111", "Completed");
  original.spec = { location: { persistentVolumeClaim: { claimName: "x" } }, ttl: "24h" };
  const foreign = { s3: { ...s3, endpoint: "http://attacker:80", credentialsSecretRef: { name: "other-secret" } } };
  const index = parseBackupIndex(
    JSON.parse(JSON.stringify(backupIndexOf(original, [stepOf(original, foreign)]))),
    "team/nightly-0123abcd",
  );

  it("marks the backup synced, points it at the location it was found at, without a ttl", () => {
    const made = syncedBackup(index, location);
    assert.equal(made.metadata.labels?.["fedbackup.io/synced"], "true");
    assert.equal(made.metadata.annotations?.["fedbackup.io/synced-from"], "offsite");
    assert.equal(made.metadata.annotations?.["fedbackup.io/synced-uid"], "0123abcd-1111");
    assert.deepEqual(made.spec, { locationRef: { name: "offsite" } });
  });

  it("records this location in each step, never the one the index names, and the new backup as owner", () => {
    const created = {
      ...syncedBackup(index, location),
      metadata: { ...syncedBackup(index, location).metadata, uid: "new-uid" },
    };
    const [step] = syncedSteps(index, created, location);
    assert.deepEqual(step!.manifest.spec.location, { s3, path: "team/nightly-0123abcd" });
    assert.equal(step!.manifest.spec.backupUID, "new-uid");
    assert.equal(step!.manifest.metadata.ownerReferences?.[0]?.uid, "new-uid");
    assert.equal(step!.manifest.metadata.labels?.["app.kubernetes.io/managed-by"], "fedbackup");
  });
});
