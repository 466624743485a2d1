import assert from "node:assert/strict";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { actionBatches } from "../../../src/controllers/federatedbackup/action-batches.js";
import type { BackupAction } from "../../../src/controllers/federatedbackup/decide.js";
import { buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";

const backup: FederatedBackup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "team-a", uid: "uid-1" },
  spec: { location: { persistentVolumeClaim: { claimName: "backups" } } },
};
const step = (n: number) => buildNodeSnapshot(backup, 1, n, `node-${n}`, []);
const create = (n: number): BackupAction => ({ kind: "CreateStep", step: step(n) });
const start = (n: number): BackupAction => ({ kind: "StartJob", step: step(n), waitsForTurn: true });
const record = (n: number): BackupAction => ({ kind: "RecordStepPhase", step: step(n), phase: "Running" });
const label = (a: BackupAction) =>
  "step" in a && typeof a.step === "object" ? `${a.kind}:${a.step.spec.order}` : a.kind;
const shape = (actions: BackupAction[]) => actionBatches(actions).map((batch) => batch.map((seq) => seq.map(label)));

describe("action batches", () => {
  it("puts consecutive step creations side by side and keeps every other action alone, in order", () => {
    const actions: BackupAction[] = [
      { kind: "ReleaseLease" },
      create(1),
      create(2),
      create(3),
      { kind: "ReleaseLease" },
      create(4),
      { kind: "DeleteBackup" },
    ];
    assert.deepEqual(shape(actions), [
      [["ReleaseLease"]],
      [["CreateStep:1"], ["CreateStep:2"], ["CreateStep:3"]],
      [["ReleaseLease"]],
      [["CreateStep:4"]],
      [["DeleteBackup"]],
    ]);
  });

  it("runs the hand-off beside the step actions after it, each step's actions in order, one sequence per step", () => {
    const actions: BackupAction[] = [
      { kind: "ClaimLease", node: "node-5", step: step(5).metadata.name! },
      start(7),
      record(7),
      record(3),
      { kind: "DeleteStep", step: step(2) },
      create(2),
      { kind: "Event", type: "Normal", reason: "Started", message: "m" },
      record(8),
    ];
    assert.deepEqual(shape(actions), [
      [["ClaimLease"], ["StartJob:7", "RecordStepPhase:7"], ["RecordStepPhase:3"], ["DeleteStep:2", "CreateStep:2"]],
      [["Event"]],
      [["RecordStepPhase:8"]],
    ]);
  });

  it("makes the hand-off before starting a Job whose agent does not wait for its turn", () => {
    const strictStart: BackupAction = { kind: "StartJob", step: step(5), waitsForTurn: false };
    const actions: BackupAction[] = [
      { kind: "ClaimLease", node: "node-5", step: step(5).metadata.name! },
      record(4),
      strictStart,
      record(5),
    ];
    assert.deepEqual(shape(actions), [[["ClaimLease"], ["RecordStepPhase:4"]], [["StartJob:5", "RecordStepPhase:5"]]]);
  });
});
