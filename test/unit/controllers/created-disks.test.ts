import assert from "node:assert/strict";
import type { NodeSnapshotSpecWorkloadClaim } from "../../../src/api/v1alpha1/index.js";
import {
  createdDisks,
  type CreatedDisks,
  type CreatedDisksInput,
  type CreatedDisksProblem,
} from "../../../src/controllers/workloadrestore/created-disks.js";

const source = { namespace: "vms", name: "db-0" };
const copy = { namespace: "vms", name: "db-0-copy" };

const rootClaim: NodeSnapshotSpecWorkloadClaim = {
  volume: "root",
  claimName: "db-0-root",
  sourceKind: "DataVolume",
  volumeMode: "Block",
  accessModes: ["ReadWriteMany"],
  storageClassName: "fast",
  sizeBytes: 10737418240,
};

function input(o: Partial<CreatedDisksInput> = {}): CreatedDisksInput {
  return {
    restoreNamespace: "vms",
    source,
    target: copy,
    capture: { files: ["vms/db-0/disk0.img"], claims: [rootClaim], definition: true },
    existingClaims: new Map(),
    namedFiles: new Set(),
    namedClaims: new Set(),
    ...o,
  };
}

function disks(result: CreatedDisks | CreatedDisksProblem): CreatedDisks {
  assert.ok(!("problem" in result), "problem" in result ? result.message : "");
  return result;
}

function problem(result: CreatedDisks | CreatedDisksProblem): CreatedDisksProblem {
  assert.ok("problem" in result, "expected a problem");
  return result;
}

describe("createdDisks", () => {
  it("gives a copy its renamed files and new claims of the captured shape", () => {
    assert.deepEqual(disks(createdDisks(input())), {
      files: ["vms/db-0-copy/disk0.img"],
      renamedFiles: [{ from: "vms/db-0/disk0.img", to: "vms/db-0-copy/disk0.img" }],
      claims: [
        {
          volume: "root",
          claimName: "db-0-copy-root",
          sourceKind: "DataVolume",
          volumeMode: "Block",
          capturedClaimName: "db-0-root",
          create: { accessModes: ["ReadWriteMany"], storageClassName: "fast", storage: "10737418240" },
        },
      ],
    });
  });

  it("restores a deleted VM under its own names: no renamed file, no capturedClaimName", () => {
    const result = disks(createdDisks(input({ target: source })));
    assert.deepEqual(result.files, ["vms/db-0/disk0.img"]);
    assert.deepEqual(result.renamedFiles, []);
    assert.equal(result.claims[0]!.claimName, "db-0-root");
    assert.ok(!("capturedClaimName" in result.claims[0]!));
  });

  it("writes an existing claim of the target's name in place: nothing to create", () => {
    const result = disks(
      createdDisks(input({ target: source, existingClaims: new Map([["db-0-root", { volumeMode: "Block" }]]) })),
    );
    assert.ok(!("create" in result.claims[0]!));
  });

  it("overrides the captured class with spec.storageClassName, and has none when neither gives one", () => {
    const overridden = disks(createdDisks(input({ storageClassName: "slow" })));
    assert.equal(overridden.claims[0]!.create?.storageClassName, "slow");
    const { storageClassName: _, ...noClass } = rootClaim;
    const none = disks(createdDisks(input({ capture: { files: [], claims: [noClass], definition: true } })));
    assert.ok(!("storageClassName" in none.claims[0]!.create!));
  });

  it("asks for ReadWriteOnce when the capture records no access modes", () => {
    const { accessModes: _, ...noModes } = rootClaim;
    const result = disks(createdDisks(input({ capture: { files: [], claims: [noModes], definition: true } })));
    assert.deepEqual(result.claims[0]!.create?.accessModes, ["ReadWriteOnce"]);
  });

  it("refuses claims in another namespace than the restore's (its Job mounts only those)", () => {
    const p = problem(createdDisks(input({ target: { namespace: "qa", name: "db-0" } })));
    assert.equal(p.problem, "ClaimInOtherNamespace");
    assert.match(p.message, /^Skipped: qa\/db-0 /);
  });

  it("allows a target in another namespace when the capture has no claims (files only)", () => {
    const target = { namespace: "qa", name: "db-0" };
    const result = disks(
      createdDisks(input({ target, capture: { files: ["vms/db-0/a.img"], claims: [], definition: true } })),
    );
    assert.deepEqual(result.files, ["qa/db-0/a.img"]);
  });

  it("refuses a file another VM names (DiskInUse)", () => {
    const p = problem(createdDisks(input({ namedFiles: new Set(["vms/db-0-copy/disk0.img"]) })));
    assert.equal(p.problem, "DiskInUse");
    assert.match(p.message, /file vms\/db-0-copy\/disk0\.img/);
  });

  it("refuses a claim another VM names (DiskInUse), only in the target's namespace", () => {
    const p = problem(createdDisks(input({ namedClaims: new Set(["vms/db-0-copy-root"]) })));
    assert.equal(p.problem, "DiskInUse");
    assert.match(p.message, /claim db-0-copy-root/);
    disks(createdDisks(input({ namedClaims: new Set(["qa/db-0-copy-root", "vms/db-0-root"]) })));
  });

  it("names every disk in use in one message", () => {
    const p = problem(
      createdDisks(
        input({ namedFiles: new Set(["vms/db-0-copy/disk0.img"]), namedClaims: new Set(["vms/db-0-copy-root"]) }),
      ),
    );
    assert.match(p.message, /file vms\/db-0-copy\/disk0\.img, claim db-0-copy-root/);
  });

  it("refuses to create a claim whose size the capture does not record (ClaimShapeUnknown)", () => {
    const { sizeBytes: _, ...noSize } = rootClaim;
    const capture = { files: [], claims: [noSize], definition: true };
    const p = problem(createdDisks(input({ capture })));
    assert.equal(p.problem, "ClaimShapeUnknown");
    assert.match(p.message, /db-0-copy-root/);
    // An existing claim needs no shape.
    disks(createdDisks(input({ capture, existingClaims: new Map([["db-0-copy-root", {}]]) })));
  });
});
