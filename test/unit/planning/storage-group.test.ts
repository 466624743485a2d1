import assert from "node:assert/strict";
import { diskStorageKey, nodeStepStorageKeys, stepsConflict } from "../../../src/planning/storage-group.js";
import type { ClaimDisk, HostDiskDisk } from "../../../src/planning/vm-disks.js";

const claim = (claimName: string, fields: Partial<ClaimDisk> = {}): ClaimDisk => ({
  kind: "claim",
  volumes: ["root"],
  claimName,
  source: "persistentVolumeClaim",
  volumeMode: "Block",
  accessModes: ["ReadWriteMany"],
  storageClassName: "rbd",
  ...fields,
});
const onShared = (path: string): HostDiskDisk => ({
  kind: "hostDisk",
  volumes: ["root"],
  path: `/s/${path}`,
  sharedPath: path,
});
const SHARED = { sharedVolumeIdentity: "nfs:filer:/vms" };

describe("storage groups", () => {
  it("keys a claim by its StorageClass, or by the group the user named", () => {
    assert.equal(diskStorageKey(claim("a"), "ns"), "storageclass/rbd");
    assert.equal(diskStorageKey(claim("a"), "ns", { group: "ceph" }), "group/ceph");
    assert.equal(diskStorageKey(claim("a"), "ns", { group: "" }), "storageclass/rbd");
  });

  it("keys a claim without a StorageClass by its volume, else by itself", () => {
    assert.equal(
      diskStorageKey(claim("a", { storageClassName: undefined, volumeIdentity: "csi:d:h" }), "ns"),
      "volume/csi:d:h",
    );
    assert.equal(diskStorageKey(claim("a", { storageClassName: undefined }), "ns"), "claim/ns/a");
  });

  it("keys hostDisks on the shared volume by the shared volume's identity, whatever the group", () => {
    assert.equal(diskStorageKey(onShared("ns/vm/disk.img"), "ns", { ...SHARED, group: "g" }), "volume/nfs:filer:/vms");
    assert.equal(diskStorageKey({ kind: "hostDisk", volumes: ["x"], path: "/local/x.img" }, "ns", SHARED), undefined);
    assert.throws(() => diskStorageKey(onShared("ns/vm/disk.img"), "ns"), /no identity of the shared volume/);
  });

  it("gives a static claim on the shared volume's filesystem the shared volume's key", () => {
    const same = claim("a", { storageClassName: "", volumeIdentity: "nfs:filer:/vms" });
    assert.equal(diskStorageKey(same, "ns", SHARED), diskStorageKey(onShared("x"), "ns", SHARED));
  });

  it("gives a step every key of its VMs' disks, sorted and once each", () => {
    const keys = nodeStepStorageKeys(
      [
        { workload: { namespace: "b" }, disks: [claim("x", { storageClassName: "rbd" }), onShared("b/vm/disk.img")] },
        { workload: { namespace: "a" }, disks: [claim("y", { storageClassName: "cephfs" }), claim("z")] },
        { workload: { namespace: "a" }, disks: [claim("w", { storageClassName: undefined })] },
        { workload: { namespace: "a" }, disks: [] },
      ],
      SHARED,
    );
    assert.deepEqual(keys, ["claim/a/w", "storageclass/cephfs", "storageclass/rbd", "volume/nfs:filer:/vms"]);
    assert.deepEqual(nodeStepStorageKeys([]), []);
  });

  it("lets a StorageClass named like a group or a volume never share its key", () => {
    const keys = nodeStepStorageKeys([
      { workload: { namespace: "a" }, disks: [claim("x", { storageClassName: "g" })] },
    ]);
    assert.ok(
      !stepsConflict(
        keys,
        nodeStepStorageKeys([{ workload: { namespace: "a" }, disks: [claim("x")] }], { group: "g" }),
      ),
    );
  });

  it("makes steps conflict exactly when they share a back end", () => {
    assert.ok(stepsConflict(["storageclass/a", "storageclass/b"], ["storageclass/b"]));
    assert.ok(!stepsConflict(["storageclass/a"], ["storageclass/b"]));
    assert.ok(!stepsConflict([], ["storageclass/b"]));
    assert.ok(!stepsConflict([], []));
  });
});
