import assert from "node:assert/strict";
import type { PlannedClaim } from "../../../src/planning/index.js";
import { planWorkloadClaimMethods, snapshotClassByDriver } from "../../../src/planning/index.js";

const RBD = "rbd.csi.ceph.com";
const NFS = "nfs.csi.k8s.io";
const classes = new Map([[RBD, "rbd-snap"]]);
const claim = (claimName: string, volumeMode: "Filesystem" | "Block" = "Filesystem"): PlannedClaim => ({
  volume: `v-${claimName}`,
  claimName,
  sourceKind: "PersistentVolumeClaim",
  volumeMode,
});
const drivers = (entries: Record<string, string>) => new Map(Object.entries(entries));
const methods = (r: ReturnType<typeof planWorkloadClaimMethods>) =>
  r.ok ? r.claims.map((c) => [c.claimName, c.snapshotMethod, c.volumeSnapshotClassName]) : r.reason;

describe("planWorkloadClaimMethods", () => {
  it("keeps each claim's shape (a restore creates the claim again from it) and drops an earlier method", () => {
    const shaped: PlannedClaim = {
      ...claim("a"),
      accessModes: ["ReadWriteMany"],
      storageClassName: "fast",
      sizeBytes: 1024,
      snapshotMethod: "CSI",
      why: "an earlier plan",
    };
    for (const requested of ["Copy", "Auto", "CSI"] as const) {
      const r = planWorkloadClaimMethods(
        { hasFiles: true, claims: [shaped], drivers: drivers({ a: RBD }) },
        requested,
        classes,
      );
      assert.ok(r.ok);
      const [c] = r.claims;
      assert.deepEqual([c?.accessModes, c?.storageClassName, c?.sizeBytes], [["ReadWriteMany"], "fast", 1024]);
      assert.notEqual(c?.why, "an earlier plan");
    }
  });

  it("marks a CSI claim whose driver has a VolumeGroupSnapshotClass groupSnapshot, with that class; others not", () => {
    const r = planWorkloadClaimMethods(
      {
        hasFiles: false,
        claims: [claim("a"), claim("b", "Block"), claim("c")],
        drivers: drivers({ a: RBD, b: RBD, c: NFS }),
      },
      "CSI",
      new Map([...classes, [NFS, "nfs-snap"]]),
      undefined,
      new Map([[RBD, "rbd-group"]]),
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.claims.map((c) => [c.claimName, c.snapshotMethod, c.groupSnapshot, c.volumeGroupSnapshotClassName]),
      [
        ["a", "CSI", true, "rbd-group"],
        ["b", "CSI", true, "rbd-group"],
        ["c", "CSI", undefined, undefined],
      ],
    );
    const auto = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a")], drivers: drivers({ a: RBD }) },
      "Auto",
      classes,
      undefined,
      new Map([[RBD, "rbd-group"]]),
    );
    assert.ok(auto.ok);
    assert.equal(auto.claims[0]!.groupSnapshot, true);
    assert.match(auto.claims[0]!.why!, /supports VolumeGroupSnapshot$/);
  });

  it("never marks a copied claim groupSnapshot, even on a driver with a group class", () => {
    const r = planWorkloadClaimMethods(
      { hasFiles: true, claims: [claim("a")], drivers: drivers({ a: RBD }) },
      "Auto",
      classes,
      undefined,
      new Map([[RBD, "rbd-group"]]),
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.claims.map((c) => [c.snapshotMethod, c.groupSnapshot, c.volumeGroupSnapshotClassName]),
      [["Copy", undefined, undefined]],
    );
  });

  it("Auto cuts every claim of a driver with a class with CSI, with that class, and says why", () => {
    const r = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a"), claim("b", "Block")], drivers: drivers({ a: RBD, b: RBD }) },
      "Auto",
      classes,
    );
    assert.deepEqual(methods(r), [
      ["a", "CSI", "rbd-snap"],
      ["b", "CSI", "rbd-snap"],
    ]);
    assert.ok(r.ok);
    assert.equal(r.claims[0]!.why, `Auto picked CSI: a VolumeSnapshotClass exists for driver ${RBD}`);
    // The claim's own fields are kept as they were.
    assert.deepEqual(
      r.claims.map(({ volume, sourceKind, volumeMode }) => [volume, sourceKind, volumeMode]),
      [
        ["v-a", "PersistentVolumeClaim", "Filesystem"],
        ["v-b", "PersistentVolumeClaim", "Block"],
      ],
    );
  });

  it("Auto copies the claims of a VM that is not all CSI: one VM's disks are cut in one window", () => {
    const withFiles = planWorkloadClaimMethods(
      { hasFiles: true, claims: [claim("a")], drivers: drivers({ a: RBD }) },
      "Auto",
      classes,
    );
    assert.deepEqual(methods(withFiles), [["a", "Copy", undefined]]);
    assert.ok(withFiles.ok);
    assert.match(withFiles.claims[0]!.why!, /^Auto picked Copy: the VM also has disk files on the shared volume/);
    const mixed = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a"), claim("b")], drivers: drivers({ a: RBD, b: NFS }) },
      "Auto",
      classes,
    );
    assert.deepEqual(methods(mixed), [
      ["a", "Copy", undefined],
      ["b", "Copy", undefined],
    ]);
    assert.ok(mixed.ok);
    assert.match(
      mixed.claims[0]!.why!,
      /claim b of the same VM cannot be cut with CSI \(Auto picked Copy: no VolumeSnapshotClass exists for driver nfs/,
    );
  });

  it("Auto copies claims with no CSI driver or no class, saying so", () => {
    const r = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a")], drivers: drivers({}) },
      "Auto",
      classes,
    );
    assert.ok(r.ok);
    assert.equal(r.claims[0]!.snapshotMethod, "Copy");
    assert.match(r.claims[0]!.why!, /^Auto picked Copy: it is not on a CSI volume/);
  });

  it("explicit CSI with no class for a claim's driver leaves the VM out: VolumeSnapshotClassNotFound", () => {
    const r = planWorkloadClaimMethods(
      { hasFiles: true, claims: [claim("a"), claim("b")], drivers: drivers({ a: RBD, b: NFS }) },
      "CSI",
      classes,
      RBD,
    );
    assert.equal(methods(r), "VolumeSnapshotClassNotFound");
    assert.ok(!r.ok);
    assert.match(
      r.detail,
      /claim b is on CSI driver nfs\.csi\.k8s\.io, but VolumeSnapshotClass spec\.snapshot\.volumeSnapshotClassName is for rbd/,
    );
    // With the named class's driver, every claim is CSI, the VM's files notwithstanding.
    const ok = planWorkloadClaimMethods(
      { hasFiles: true, claims: [claim("a")], drivers: drivers({ a: RBD }) },
      "CSI",
      classes,
      RBD,
    );
    assert.deepEqual(methods(ok), [["a", "CSI", "rbd-snap"]]);
  });

  it("explicit Reflink clones Filesystem-mode claims unless marked as not cloning; a Block claim is ReflinkNotSupported", () => {
    const block = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a"), claim("b", "Block")], drivers: drivers({}) },
      "Reflink",
      classes,
    );
    assert.ok(!block.ok && block.reason === "ReflinkNotSupported");
    assert.match(block.detail, /claim b is a Block-mode claim/);
    const fs = planWorkloadClaimMethods(
      {
        hasFiles: true,
        claims: [claim("a"), claim("b")],
        drivers: drivers({ a: RBD }),
        reflink: new Map([["b", true]]),
      },
      "Reflink",
      classes,
    );
    assert.deepEqual(methods(fs), [
      ["a", "Reflink", undefined],
      ["b", "Reflink", undefined],
    ]);
    assert.ok(fs.ok && fs.claims.every((c) => c.why === "Reflink, as spec.snapshot.method asks"));
    const no = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a")], drivers: drivers({}), reflink: new Map([["a", false]]) },
      "Reflink",
      classes,
    );
    assert.ok(!no.ok && no.reason === "ReflinkNotSupported");
    assert.match(no.detail, /filesystem of claim a does not support reflink/);
  });

  it("Auto: CSI where a class exists, else Reflink where the filesystem is known to clone, else Copy", () => {
    const r = planWorkloadClaimMethods(
      {
        hasFiles: false,
        claims: [claim("a"), claim("b"), claim("c"), claim("d", "Block")],
        drivers: drivers({ a: NFS }),
        reflink: new Map([
          ["a", true],
          ["c", false],
          ["d", true],
        ]),
      },
      "Auto",
      classes,
    );
    assert.deepEqual(methods(r), [
      ["a", "Reflink", undefined],
      ["b", "Copy", undefined],
      ["c", "Copy", undefined],
      ["d", "Copy", undefined],
    ]);
    assert.ok(r.ok);
    assert.deepEqual(
      r.claims.map((c) => c.why),
      [
        `Auto picked Reflink: no VolumeSnapshotClass exists for driver ${NFS}, and its filesystem supports reflink`,
        "Auto picked Copy: it is not on a CSI volume, and its filesystem's reflink support is unknown",
        "Auto picked Copy: it is not on a CSI volume, and its filesystem does not support reflink",
        "Auto picked Copy: it is not on a CSI volume, and a Block-mode claim cannot be cloned",
      ],
    );
  });

  it("Auto falling back from CSI for a VM clones the claims known to clone and copies the others", () => {
    const r = planWorkloadClaimMethods(
      {
        hasFiles: true,
        claims: [claim("a"), claim("b")],
        drivers: drivers({ a: RBD, b: RBD }),
        reflink: new Map([["a", true]]),
      },
      "Auto",
      classes,
    );
    assert.deepEqual(methods(r), [
      ["a", "Reflink", undefined],
      ["b", "Copy", undefined],
    ]);
    assert.ok(r.ok);
    assert.match(r.claims[0]!.why!, /^Auto picked Reflink: the VM also has disk files on the shared volume/);
    assert.match(r.claims[1]!.why!, /^Auto picked Copy: the VM also has disk files on the shared volume/);
  });

  it("explicit Copy copies every claim", () => {
    const r = planWorkloadClaimMethods(
      { hasFiles: false, claims: [claim("a")], drivers: drivers({ a: RBD }) },
      "Copy",
      classes,
    );
    assert.deepEqual(methods(r), [["a", "Copy", undefined]]);
  });
});

describe("snapshotClassByDriver", () => {
  it("takes the named class for its driver, else the default class, else the first by name", () => {
    const classes = [
      { name: "b-rbd", driver: RBD, isDefault: false },
      { name: "a-rbd", driver: RBD, isDefault: false },
      { name: "z-nfs", driver: NFS, isDefault: true },
      { name: "c-nfs", driver: NFS, isDefault: false },
      { name: "no-driver", driver: "", isDefault: true },
    ];
    assert.deepEqual([...snapshotClassByDriver(classes)].sort(), [
      [NFS, "z-nfs"],
      [RBD, "a-rbd"],
    ]);
    assert.equal(snapshotClassByDriver(classes, "b-rbd").get(RBD), "b-rbd");
    assert.equal(snapshotClassByDriver(classes, "b-rbd").get(NFS), "z-nfs");
  });
});
