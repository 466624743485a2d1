import assert from "node:assert/strict";
import { claimsToLookUp, recordedClasses, runStorageKeys } from "../../../src/controllers/runtime/storage-keys.js";

const classes = new Map([
  ["vms/a-disk", "fast"],
  ["vms/b-disk", "slow"],
  ["vms/c-disk", ""],
  ["vms/d-disk", "fast"],
]);

describe("runtime/storage-keys runStorageKeys", () => {
  it("keys files by the shared volume and claims by their StorageClass, sorted, each once", () => {
    const keys = runStorageKeys(
      [
        { namespace: "vms", files: ["vms/x/disk.img"], claims: [{ claimName: "a-disk" }] },
        { namespace: "vms", files: [], claims: [{ claimName: "b-disk" }, { claimName: "d-disk" }] },
      ],
      classes,
      { sharedVolumeIdentity: "nfs:h:/d" },
    );
    assert.deepEqual(keys, ["storageclass/fast", "storageclass/slow", "volume/nfs:h:/d"]);
  });

  it("keys a claim without a StorageClass, or one not read yet, by itself", () => {
    const keys = runStorageKeys(
      [{ namespace: "vms", claims: [{ claimName: "c-disk" }, { claimName: "unknown" }] }],
      classes,
      {},
    );
    assert.deepEqual(keys, ["claim/vms/c-disk", "claim/vms/unknown"]);
  });

  it("puts every claim in the group the user named, and files still on the shared volume", () => {
    const keys = runStorageKeys(
      [{ namespace: "vms", files: ["a"], claims: [{ claimName: "a-disk" }, { claimName: "b-disk" }] }],
      classes,
      { group: "ceph-pool-1", sharedVolumeIdentity: "nfs:h:/d" },
    );
    assert.deepEqual(keys, ["group/ceph-pool-1", "volume/nfs:h:/d"]);
  });

  it("has nothing to serialize on for VMs with neither files nor claims, and no shared key without a shared volume", () => {
    assert.deepEqual(runStorageKeys([{ namespace: "vms", files: [] }], classes, { sharedVolumeIdentity: "x" }), []);
    assert.deepEqual(runStorageKeys([{ namespace: "vms", files: ["a"] }], classes, {}), []);
  });
});

describe("runtime/storage-keys claimsToLookUp", () => {
  it("lists the claims whose class is not known yet, each once, sorted", () => {
    assert.deepEqual(
      claimsToLookUp(
        [
          { namespace: "vms", claims: [{ claimName: "z" }, { claimName: "a-disk" }] },
          { namespace: "other", claims: [{ claimName: "z" }] },
          { namespace: "vms", claims: [{ claimName: "z" }] },
        ],
        classes,
      ),
      ["other/z", "vms/z"],
    );
  });
});

describe("runtime/storage-keys recordedClasses", () => {
  it("takes the StorageClass a backup step recorded, so that only claims without one are read", () => {
    const workloads = [
      { namespace: "vms", claims: [{ claimName: "a", storageClassName: "fast" }, { claimName: "b" }] },
      { namespace: "other", claims: [{ claimName: "a", storageClassName: "slow" }] },
    ];
    const recorded = recordedClasses(workloads);
    assert.deepEqual(
      [...recorded],
      [
        ["vms/a", "fast"],
        ["other/a", "slow"],
      ],
    );
    assert.deepEqual(claimsToLookUp(workloads, recorded), ["vms/b"]);
  });
});
