import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import {
  BackupIndexError,
  backupIndexKey,
  backupIndexOf,
  backupPathOfIndexKey,
  parseBackupIndex,
} from "../../../src/storage/backup-index.js";

const PATH = "team/nightly-0123abcd";

const backup: FederatedBackup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "team", uid: "0123abcd-aaaa-bbbb-cccc-000000000000", labels: { tier: "db" } },
  spec: { locationRef: { name: "offsite" } },
  status: { phase: "Completed", backupPath: PATH },
};
const step = (name: string, path = PATH): NodeSnapshot => ({
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "NodeSnapshot",
  metadata: { name, namespace: "team" },
  spec: {
    backupName: "nightly",
    backupUID: backup.metadata.uid!,
    node: "node-a",
    round: 1,
    order: 0,
    location: { s3: { endpoint: "http://s3", bucket: "b", credentialsSecretRef: { name: "creds" } }, path },
    snapshot: { method: "Copy", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "5m" },
    extractAt: "Backup",
  },
  status: { phase: "Succeeded" },
});

/** The index as it would come back from the location (JSON). */
const roundTrip = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("storage/backup-index", () => {
  it("keys an index by the backup's directory, in one flat prefix per namespace", () => {
    assert.equal(backupIndexKey(PATH), ".fedbackup/index/team/nightly-0123abcd.json");
    assert.equal(backupPathOfIndexKey(".fedbackup/index/team/nightly-0123abcd.json", "team"), PATH);
  });

  it("reads no index of another namespace, nested or oddly named", () => {
    for (const key of [
      ".fedbackup/index/other/nightly-0123abcd.json",
      ".fedbackup/index/team/a/b.json",
      ".fedbackup/index/team/../x.json",
      ".fedbackup/index/team/Nightly.json",
      ".fedbackup/index/team/nightly-0123abcd.txt",
      "team/nightly-0123abcd/team/vm/manifest.json",
    ]) {
      assert.equal(backupPathOfIndexKey(key, "team"), undefined, key);
    }
  });

  it("reads back what it writes: the backup and its steps as they were", () => {
    const index = backupIndexOf(backup, [step("nightly-r1-node-a")]);
    const parsed = parseBackupIndex(roundTrip(index), PATH);
    assert.equal(parsed.backup.uid, backup.metadata.uid);
    assert.deepEqual(parsed.backup.labels, { tier: "db" });
    assert.deepEqual(
      parsed.steps.map((s) => s.name),
      ["nightly-r1-node-a"],
    );
  });

  // Malformed on purpose: each case breaks one field of an index read back as JSON.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Raw = any;
  const refused: Array<[string, (index: Raw) => void, RegExp]> = [
    ["another schema", (i) => (i.schemaVersion = 2), /schemaVersion 2/],
    ["another namespace", (i) => (i.backup.namespace = "other"), /of namespace "other"/],
    ["a directory its name and uid would not give", (i) => (i.backup.uid = "ffffffff-x"), /would not be stored there/],
    ["a run not over", (i) => (i.backup.status.phase = "InProgress"), /in phase "InProgress"/],
    ["a run that failed", (i) => (i.backup.status.phase = "Failed"), /in phase "Failed"/],
    ["a step that wrote elsewhere", (i) => (i.steps[0].spec.location.path = "other/x-12345678"), /wrote elsewhere/],
    ["a step of another backup", (i) => (i.steps[0].spec.backupName = "weekly"), /of another backup/],
    ["a step with an invalid name", (i) => (i.steps[0].name = "../x"), /without a valid name/],
    ["labels that are not strings", (i) => (i.backup.labels = { a: 1 }), /labels that are not strings/],
  ];
  for (const [what, change, message] of refused) {
    it(`refuses an index of ${what}`, () => {
      const index = roundTrip(backupIndexOf(backup, [step("nightly-r1-node-a")])) as Raw;
      change(index);
      assert.throws(
        () => parseBackupIndex(index, PATH),
        (err: unknown) => {
          assert.ok(err instanceof BackupIndexError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
