import assert from "node:assert/strict";
import {
  DISK_KINDS,
  diskLabel,
  isDiskOfKind,
  parseDiskKinds,
  summarizeDisks,
  type DigestDisk,
  type DiskKind,
} from "../../../src/digest/index.js";

const hostDisk: DigestDisk = { volume: "root", type: "hostDisk" };
const file: DigestDisk = { type: "file", file: "apps/gone/disk0.img" };
const fsClaim: DigestDisk = { volume: "a", type: "persistentVolumeClaim", claim: "a", volumeMode: "Filesystem" };
const blockClaim: DigestDisk = { volume: "b", type: "persistentVolumeClaim", claim: "b", volumeMode: "Block" };
const claim: DigestDisk = { volume: "c", type: "persistentVolumeClaim", claim: "c" };
const blockDv: DigestDisk = { volume: "d", type: "dataVolume", claim: "d", volumeMode: "Block" };
const dv: DigestDisk = { volume: "e", type: "dataVolume", claim: "e" };

describe("diskLabel and summarizeDisks", () => {
  const labels: Array<[DigestDisk, string]> = [
    [hostDisk, "hostDisk"],
    [file, "file"],
    [fsClaim, "claim (Filesystem)"],
    [blockClaim, "claim (Block)"],
    [claim, "claim"],
    [blockDv, "dataVolume (Block)"],
    [dv, "dataVolume"],
  ];
  for (const [disk, want] of labels) it(`${JSON.stringify(disk)} → ${want}`, () => assert.equal(diskLabel(disk), want));

  it("names each kind once, in first-seen order, counting repeats", () => {
    assert.equal(summarizeDisks([]), "-");
    assert.equal(summarizeDisks([fsClaim]), "claim (Filesystem)");
    assert.equal(
      summarizeDisks([blockClaim, hostDisk, blockClaim, hostDisk, blockDv, blockClaim]),
      "3× claim (Block), 2× hostDisk, dataVolume (Block)",
    );
    assert.equal(summarizeDisks([file, file, fsClaim]), "2× file, claim (Filesystem)");
  });
});

describe("parseDiskKinds", () => {
  it("takes the kinds case-insensitively, comma-separated, each once", () => {
    assert.deepEqual(parseDiskKinds("claim"), ["claim"]);
    assert.deepEqual(parseDiskKinds("HOSTDISK, block ,Block,datavolume"), ["hostDisk", "Block", "dataVolume"]);
    assert.deepEqual(parseDiskKinds(DISK_KINDS.join(",")), [...DISK_KINDS]);
  });

  it("refuses an unknown or empty kind, naming the valid ones", () => {
    assert.throws(
      () => parseDiskKinds("claims"),
      /unknown disk kind "claims": use hostDisk, claim, dataVolume, Filesystem, Block/,
    );
    assert.throws(() => parseDiskKinds(""), /unknown disk kind ""/);
    assert.throws(() => parseDiskKinds("claim,"), /unknown disk kind ""/);
  });
});

describe("isDiskOfKind", () => {
  const disks = { hostDisk, file, fsClaim, blockClaim, claim, blockDv, dv };
  const want: Record<DiskKind, Array<keyof typeof disks>> = {
    hostDisk: ["hostDisk", "file"],
    claim: ["fsClaim", "blockClaim", "claim", "blockDv", "dv"],
    dataVolume: ["blockDv", "dv"],
    Filesystem: ["fsClaim"],
    Block: ["blockClaim", "blockDv"],
  };
  for (const kind of DISK_KINDS) {
    it(`${kind}: ${want[kind].join(", ")}`, () => {
      const got = (Object.keys(disks) as Array<keyof typeof disks>).filter((k) => isDiskOfKind(disks[k], kind));
      assert.deepEqual(got, want[kind]);
    });
  }
});
