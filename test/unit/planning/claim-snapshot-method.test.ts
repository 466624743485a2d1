import assert from "node:assert/strict";
import type { ClaimForSnapshot, SnapshotCapabilities } from "../../../src/planning/claim-snapshot-method.js";
import { resolveClaimSnapshotMethod } from "../../../src/planning/claim-snapshot-method.js";

const RBD = "rbd.csi.ceph.com";
const NFS = "nfs.csi.k8s.io";
const caps: SnapshotCapabilities = { driversWithClass: new Set([RBD]), groupSnapshotDrivers: new Set([RBD]) };
const fsClaim = (fields: Partial<ClaimForSnapshot> = {}): ClaimForSnapshot => ({
  claimName: "data",
  volumeMode: "Filesystem",
  ...fields,
});
const blockClaim = (fields: Partial<ClaimForSnapshot> = {}): ClaimForSnapshot => ({
  claimName: "root",
  volumeMode: "Block",
  ...fields,
});
const picked = (r: ReturnType<typeof resolveClaimSnapshotMethod>) => (r.ok ? r.method : r.reason);

describe("resolveClaimSnapshotMethod", () => {
  it("Auto picks CSI when a class exists for the claim's driver, and says so", () => {
    const r = resolveClaimSnapshotMethod(blockClaim({ driver: RBD }), "Auto", caps);
    assert.ok(r.ok);
    assert.equal(r.method, "CSI");
    assert.equal(r.groupSnapshot, true);
    assert.equal(r.driver, RBD);
    assert.equal(
      r.why,
      `Auto picked CSI: a VolumeSnapshotClass exists for driver ${RBD}, which supports VolumeGroupSnapshot`,
    );
    const noGroup = resolveClaimSnapshotMethod(blockClaim({ driver: RBD }), "Auto", {
      driversWithClass: new Set([RBD]),
    });
    assert.ok(noGroup.ok && !noGroup.groupSnapshot);
  });

  it("Auto picks Reflink for a Filesystem-mode claim known to clone, when CSI is not possible", () => {
    const r = resolveClaimSnapshotMethod(fsClaim({ driver: NFS, reflink: true }), "Auto", caps);
    assert.ok(r.ok);
    assert.equal(r.method, "Reflink");
    assert.equal(r.groupSnapshot, false);
    assert.match(
      r.why,
      /no VolumeSnapshotClass exists for driver nfs\.csi\.k8s\.io, and its filesystem supports reflink/,
    );
  });

  it("Auto falls back to Copy: reflink unknown or unsupported, Block mode, or no CSI at all", () => {
    const unknown = resolveClaimSnapshotMethod(fsClaim({ driver: NFS }), "Auto", caps);
    assert.ok(unknown.ok && unknown.method === "Copy");
    assert.match(unknown.why, /reflink support is unknown/);
    const no = resolveClaimSnapshotMethod(fsClaim({ reflink: false }), "Auto", caps);
    assert.ok(no.ok && no.method === "Copy");
    assert.match(no.why, /it is not on a CSI volume, and its filesystem does not support reflink/);
    // Block mode is never Reflink, whatever the flag says.
    const block = resolveClaimSnapshotMethod(blockClaim({ driver: NFS, reflink: true }), "Auto", caps);
    assert.ok(block.ok && block.method === "Copy");
    assert.match(block.why, /a Block-mode claim cannot be cloned/);
  });

  it("explicit CSI on a driver without a class is VolumeSnapshotClassNotFound, naming the claim", () => {
    const r = resolveClaimSnapshotMethod(fsClaim({ driver: NFS }), "CSI", caps);
    assert.ok(!r.ok);
    assert.equal(r.reason, "VolumeSnapshotClassNotFound");
    assert.match(r.message, /claim data is on CSI driver nfs\.csi\.k8s\.io, for which no VolumeSnapshotClass exists/);
    const notCsi = resolveClaimSnapshotMethod(fsClaim({ driver: "" }), "CSI", caps);
    assert.ok(!notCsi.ok);
    assert.match(notCsi.message, /not on a CSI volume/);
    assert.equal(picked(resolveClaimSnapshotMethod(blockClaim({ driver: RBD }), "CSI", caps)), "CSI");
  });

  it("explicit CSI with a named class cuts only claims of that class's driver", () => {
    const named = { ...caps, driversWithClass: new Set([RBD, NFS]), namedClassDriver: RBD };
    assert.equal(picked(resolveClaimSnapshotMethod(blockClaim({ driver: RBD }), "CSI", named)), "CSI");
    const other = resolveClaimSnapshotMethod(fsClaim({ driver: NFS }), "CSI", named);
    assert.ok(!other.ok);
    assert.match(other.message, /spec\.snapshot\.volumeSnapshotClassName is for rbd\.csi\.ceph\.com/);
  });

  it("explicit Reflink is refused for Block mode and filesystems known not to clone, tried when unknown", () => {
    assert.equal(
      picked(resolveClaimSnapshotMethod(blockClaim({ reflink: true }), "Reflink", caps)),
      "ReflinkNotSupported",
    );
    assert.equal(
      picked(resolveClaimSnapshotMethod(fsClaim({ reflink: false }), "Reflink", caps)),
      "ReflinkNotSupported",
    );
    assert.equal(picked(resolveClaimSnapshotMethod(fsClaim(), "Reflink", caps)), "Reflink");
    // Explicit Reflink is not replaced by CSI even where CSI is possible.
    assert.equal(
      picked(resolveClaimSnapshotMethod(fsClaim({ driver: RBD, reflink: true }), "Reflink", caps)),
      "Reflink",
    );
  });

  it("explicit Copy always works", () => {
    for (const c of [fsClaim(), blockClaim({ driver: RBD }), fsClaim({ reflink: true })]) {
      const r = resolveClaimSnapshotMethod(c, "Copy", caps);
      assert.ok(r.ok && r.method === "Copy" && r.why === "Copy, as spec.snapshot.method asks");
    }
  });
});
