import assert from "node:assert/strict";
import type { AllowedClaim } from "../../../src/agent/restore-claims.js";
import { allowedClaimFor, checkAllowedClaims, claimOf } from "../../../src/agent/restore-claims.js";
import { RestoreError } from "../../../src/agent/restore-error.js";
import { restoreTargets } from "../../../src/agent/restore-targets.js";
import type { ManifestFilesystemDisk, WorkloadManifest } from "../../../src/agent/manifest.js";

const refusedWith = (reason: string, message: RegExp) => (err: unknown) =>
  err instanceof RestoreError && err.reason === reason && message.test(err.message);

describe("agent/restore-targets restoreTargets", () => {
  const files = ["vms/a/disk.img", "vms/a/seed.iso"];

  it("writes each file at its captured path when nothing is renamed", () => {
    assert.deepEqual(restoreTargets(files, [], files, "prod/a"), files);
  });

  it("writes a renamed file at its new path, the others at their captured path, in the manifest's order", () => {
    const renamed = [{ from: "vms/a/disk.img", to: "vms/a-copy/disk.img" }];
    assert.deepEqual(restoreTargets(files, renamed, ["vms/a-copy/disk.img", "vms/a/seed.iso"], "prod/a-copy"), [
      "vms/a-copy/disk.img",
      "vms/a/seed.iso",
    ]);
  });

  it("ignores a renaming of a file the backup does not hold", () => {
    const renamed = [{ from: "vms/z/disk.img", to: "vms/elsewhere.img" }];
    assert.deepEqual(restoreTargets(files, renamed, files, "prod/a"), files);
  });

  it("refuses a target that is not allowed (ForeignFile): the captured path of a renamed file is not enough", () => {
    const renamed = [{ from: "vms/a/disk.img", to: "vms/a-copy/disk.img" }];
    assert.throws(
      () => restoreTargets(files, renamed, files, "prod/a-copy"),
      refusedWith("ForeignFile", /lists vms\/a\/disk\.img \(written as vms\/a-copy\/disk\.img\), which is not a file/),
    );
    assert.throws(
      () => restoreTargets(files, [], ["vms/a/disk.img"], "prod/a"),
      refusedWith("ForeignFile", /lists vms\/a\/seed\.iso, which is not a file prod\/a may be restored to/),
    );
  });

  it("refuses two files on one target (ForeignFile), naming both", () => {
    const renamed = [{ from: "vms/a/disk.img", to: "vms/a/seed.iso" }];
    assert.throws(
      () => restoreTargets(files, renamed, files, "prod/a"),
      refusedWith(
        "ForeignFile",
        /lists both vms\/a\/disk\.img and vms\/a\/seed\.iso, which would both be written to vms\/a\/seed\.iso/,
      ),
    );
  });

  it("refuses a renaming with an unsafe path or a file renamed twice, as an invalid request", () => {
    for (const bad of ["../x/disk.img", "/abs/disk.img", "vms//a.img", ""]) {
      assert.throws(
        () => restoreTargets(files, [{ from: "vms/a/disk.img", to: bad }], [bad], "prod/a"),
        /invalid renamed file/,
      );
      assert.throws(
        () => restoreTargets(files, [{ from: bad, to: "vms/b.img" }], ["vms/b.img"], "prod/a"),
        /invalid renamed file/,
      );
    }
    const twice = [
      { from: "vms/a/disk.img", to: "vms/b/disk.img" },
      { from: "vms/a/disk.img", to: "vms/c/disk.img" },
    ];
    assert.throws(() => restoreTargets(files, twice, ["vms/b/disk.img", "vms/c/disk.img"], "prod/a"), /renamed twice/);
  });
});

describe("agent/restore-claims matching a claim disk to an allowed claim", () => {
  const disk = (volume: string, claimName: string): ManifestFilesystemDisk => ({
    name: volume,
    source: { kind: "PersistentVolumeClaim", claimName },
    volumeMode: "Filesystem",
    bytes: 1,
    sha256: "0".repeat(64),
  });
  const manifestOf = (...disks: ManifestFilesystemDisk[]) =>
    ({ filesystemDisks: disks, blockDisks: [] }) as unknown as WorkloadManifest;
  const same: AllowedClaim = { volume: "root", claimName: "pvc-a", volumeMode: "Filesystem" };
  const copy: AllowedClaim = {
    volume: "root",
    claimName: "pvc-a-copy",
    capturedClaimName: "pvc-a",
    volumeMode: "Filesystem",
  };

  it("matches by volume and the claim the disk was captured from (claimName unless capturedClaimName says)", () => {
    assert.equal(allowedClaimFor(disk("root", "pvc-a"), [same]), same);
    assert.equal(allowedClaimFor(disk("root", "pvc-a"), [copy]), copy);
    assert.equal(allowedClaimFor(disk("root", "pvc-a-copy"), [copy]), undefined);
    assert.equal(allowedClaimFor(disk("data", "pvc-a"), [copy]), undefined);
  });

  it("gives each disk the claim it is written to", () => {
    const d = disk("root", "pvc-a");
    assert.deepEqual([...checkAllowedClaims(manifestOf(d), [copy], "prod/a-copy")], [[d, "pvc-a-copy"]]);
  });

  it("refuses two disks of the backup for one claim (ForeignFile)", () => {
    assert.throws(
      () => checkAllowedClaims(manifestOf(disk("root", "pvc-a"), disk("root", "pvc-a")), [copy], "prod/a-copy"),
      refusedWith("ForeignFile", /holds two disks for claim pvc-a-copy \(volume root, captured from pvc-a\)/),
    );
  });

  it("names the captured claim in messages when it is not the claim written to", () => {
    assert.equal(claimOf(disk("root", "pvc-a")), "claim pvc-a (volume root)");
    assert.equal(claimOf(disk("root", "pvc-a"), "pvc-a-copy"), "claim pvc-a-copy (volume root, captured from pvc-a)");
  });
});
