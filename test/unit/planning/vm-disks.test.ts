import assert from "node:assert/strict";
import type { VmiVolume } from "../../../src/api/kubevirt.js";
import { resolveFileOwnership } from "../../../src/planning/file-ownership.js";
import type { ObservedClaim, SharedVolumeView, VmDiskInput } from "../../../src/planning/vm-disks.js";
import {
  SKIPPED_VOLUME_TYPES,
  VM_DISK_REASON_ORDER,
  classifyVmDisks,
  isDnsLabel,
  noDiskReason,
} from "../../../src/planning/vm-disks.js";

const workload = { namespace: "tenant", name: "web" };

const claim = (name: string, fields: Partial<ObservedClaim> = {}): ObservedClaim => ({
  name,
  phase: "Bound",
  volumeMode: "Filesystem",
  accessModes: ["ReadWriteMany"],
  capacityBytes: 10 * 2 ** 30,
  storageClassName: "cephfs",
  driver: "cephfs.csi.ceph.com",
  ...fields,
});

const pvc = (name: string, claimName: string): VmiVolume => ({ name, persistentVolumeClaim: { claimName } });
const dv = (name: string, dataVolume: string): VmiVolume => ({ name, dataVolume: { name: dataVolume } });
const hostDisk = (name: string, path: string): VmiVolume => ({ name, hostDisk: { path, type: "DiskOrCreate" } });

const MOUNT = "/var/lib/shared/";
const relativePath = (p: string) => (p.startsWith(MOUNT) ? p.slice(MOUNT.length) : undefined);

/** The shared volume as seen by `workload`, ownership decided over it and `others`. */
function shared(disks: string[], others: Array<{ key: string; disks: string[] }> = []): SharedVolumeView {
  const owned = resolveFileOwnership([
    { ...workload, disks: disks.flatMap((d) => relativePath(d) ?? []), extra: [] },
    ...others.map((o) => {
      const [namespace, name] = o.key.split("/") as [string, string];
      return { namespace, name, disks: o.disks, extra: [] };
    }),
  ]);
  return { relativePath, ownership: owned.get("tenant/web")! };
}

const classify = (fields: Partial<VmDiskInput>) => classifyVmDisks({ workload, volumes: [], claims: [], ...fields });

describe("classifyVmDisks", () => {
  it("lists a PersistentVolumeClaim disk with the claim's mode, access modes, size, class and driver", () => {
    const out = classify({
      volumes: [pvc("root", "web-root")],
      claims: [claim("web-root", { accessModes: ["ReadWriteOnce", "ReadWriteOnce"] })],
    });
    assert.deepEqual(out.disks, [
      {
        kind: "claim",
        volumes: ["root"],
        claimName: "web-root",
        source: "persistentVolumeClaim",
        volumeMode: "Filesystem",
        accessModes: ["ReadWriteOnce"],
        sizeBytes: 10 * 2 ** 30,
        storageClassName: "cephfs",
        driver: "cephfs.csi.ceph.com",
      },
    ]);
    assert.deepEqual(out.problems, []);
    assert.equal(out.missing, undefined);
  });

  it("finds a DataVolume's claim under the DataVolume's name, Block mode included", () => {
    const out = classify({
      volumes: [dv("root", "web-dv")],
      claims: [claim("web-dv", { volumeMode: "Block", storageClassName: "rbd", driver: "rbd.csi.ceph.com" })],
    });
    assert.equal(out.disks.length, 1);
    assert.deepEqual(
      { ...out.disks[0], volumes: undefined },
      {
        kind: "claim",
        volumes: undefined,
        claimName: "web-dv",
        source: "dataVolume",
        volumeMode: "Block",
        accessModes: ["ReadWriteMany"],
        sizeBytes: 10 * 2 ** 30,
        storageClassName: "rbd",
        driver: "rbd.csi.ceph.com",
      },
    );
  });

  it("counts a claim named by a DataVolume volume and a PVC volume once, as a DataVolume's", () => {
    const out = classify({
      volumes: [pvc("b-direct", "disk"), dv("a-dv", "disk"), pvc("c-again", "disk")],
      claims: [claim("disk")],
    });
    assert.equal(out.disks.length, 1);
    const [d] = out.disks;
    assert.ok(d?.kind === "claim");
    assert.equal(d.source, "dataVolume");
    assert.deepEqual(d.volumes, ["a-dv", "b-direct", "c-again"]);
  });

  it("classifies volumes listed twice under one name each time, dropping nothing", () => {
    const out = classify({
      volumes: [
        pvc("disk", "one"),
        pvc("disk", "two"),
        pvc("disk", "one"),
        { name: "ci", cloudInitNoCloud: {} },
        { name: "ci", cloudInitNoCloud: {} },
      ],
      claims: [claim("one"), claim("two")],
    });
    assert.deepEqual(
      out.disks.map((d) => (d.kind === "claim" ? [d.claimName, d.volumes] : d.path)),
      [
        ["one", ["disk"]],
        ["two", ["disk"]],
      ],
    );
    assert.deepEqual(out.skipped, [{ volume: "ci", type: "cloudInitNoCloud" }]);
  });

  it("skips every ephemeral and configuration volume by its type, never as a failure", () => {
    const volumes: VmiVolume[] = [
      { name: "cd", containerDisk: { image: "quay.io/containerdisks/fedora" } },
      { name: "ci", cloudInitNoCloud: { userData: "#cloud-config" } },
      { name: "cfg", cloudInitConfigDrive: {} },
      { name: "scratch", emptyDisk: { capacity: "1Gi" } },
      { name: "eph", ephemeral: { persistentVolumeClaim: { claimName: "golden" } } },
      { name: "cm", configMap: { name: "app" } },
      { name: "sec", secret: { secretName: "app" } },
      { name: "sa", serviceAccount: { serviceAccountName: "default" } },
      { name: "down", downwardAPI: {} },
      { name: "sys", sysprep: { configMap: { name: "unattend" } } },
      { name: "future", futureDisk: { x: 1 } } as unknown as VmiVolume,
      pvc("root", "web-root"),
    ];
    const out = classify({ volumes, claims: [claim("web-root")] });
    assert.deepEqual(out.problems, []);
    assert.deepEqual(
      out.skipped.map((s) => `${s.volume}:${s.type}`),
      [
        "cd:containerDisk",
        "cfg:cloudInitConfigDrive",
        "ci:cloudInitNoCloud",
        "cm:configMap",
        "down:downwardAPI",
        "eph:ephemeral",
        "future:futureDisk",
        "sa:serviceAccount",
        "scratch:emptyDisk",
        "sec:secret",
        "sys:sysprep",
      ],
    );
    assert.ok(SKIPPED_VOLUME_TYPES.includes("containerDisk"));
    assert.ok(!SKIPPED_VOLUME_TYPES.includes("dataVolume"));
  });

  it("reports a missing claim as ClaimNotFound, naming the volume and the claim", () => {
    const out = classify({ volumes: [pvc("root", "gone"), dv("data", "importing")], claims: [claim("other")] });
    assert.deepEqual(out.disks, []);
    assert.deepEqual(
      out.problems.map((p) => [p.reason, p.volume, p.claim]),
      [
        ["ClaimNotFound", "data", "importing"],
        ["ClaimNotFound", "root", "gone"],
      ],
    );
    assert.equal(out.missing?.reason, "ClaimNotFound");
    assert.match(out.missing.message, /^VM tenant\/web: /);
    assert.match(out.missing.message, /volume "root" names PersistentVolumeClaim tenant\/gone, which does not exist/);
    assert.match(
      out.missing.message,
      /volume "data" names DataVolume tenant\/importing, whose PersistentVolumeClaim tenant\/importing does not exist/,
    );
  });

  it("reports Pending and Lost claims as ClaimNotBound with their phase", () => {
    const out = classify({
      volumes: [pvc("a", "pending"), pvc("b", "lost"), pvc("c", "nophase")],
      claims: [
        claim("pending", { phase: "Pending" }),
        claim("lost", { phase: "Lost" }),
        claim("nophase", { phase: "" }),
      ],
    });
    assert.deepEqual(
      out.problems.map((p) => [p.reason, p.claim]),
      [
        ["ClaimNotBound", "pending"],
        ["ClaimNotBound", "lost"],
        ["ClaimNotBound", "nophase"],
      ],
    );
    assert.match(out.problems[0]!.detail, /tenant\/pending, which is Pending, not Bound/);
    assert.match(out.problems[1]!.detail, /is Lost, not Bound/);
    assert.match(out.problems[2]!.detail, /is in no phase, not Bound/);
  });

  it("refuses claim and DataVolume names that are not DNS labels, passing none of them on", () => {
    const hostile = ["../etc", "A", "", "a.b", "a/b", "-a", "a-", "x".repeat(64), "é", "a\nb", "a b"];
    const out = classify({
      volumes: hostile.flatMap((h, i) => [pvc(`p${i}`, h), dv(`d${i}`, h)]),
      claims: hostile.map((h) => claim(h)),
    });
    assert.deepEqual(out.disks, []);
    assert.equal(out.problems.length, hostile.length * 2);
    assert.ok(out.problems.every((p) => p.reason === "InvalidVolume"));
    assert.equal(out.missing?.reason, "InvalidVolume");
    // The newline is quoted, so the message stays one line.
    assert.ok(!out.missing.message.includes("\n"));
    assert.ok(out.missing.message.includes('"a\\nb"'));
  });

  it("refuses volumes without a name, with two sources, or naming no claim", () => {
    const out = classify({
      volumes: [
        { hostDisk: { path: "/x" } } as unknown as VmiVolume,
        { name: "both", persistentVolumeClaim: { claimName: "a" }, dataVolume: { name: "b" } },
        { name: "empty", persistentVolumeClaim: {} } as unknown as VmiVolume,
        { name: "nopath", hostDisk: {} } as unknown as VmiVolume,
      ],
      claims: [claim("a"), claim("b")],
    });
    assert.deepEqual(out.disks, []);
    assert.deepEqual(
      out.problems.map((p) => [p.reason, p.volume]),
      [
        ["InvalidVolume", undefined],
        ["InvalidVolume", "both"],
        ["InvalidVolume", "empty"],
        ["InvalidVolume", "nopath"],
      ],
    );
    assert.match(out.problems[1]!.detail, /more than one source \(dataVolume, persistentVolumeClaim\)/);
  });

  it("takes the first of two observed claims with one name", () => {
    const out = classify({ volumes: [pvc("root", "x")], claims: [claim("x"), claim("x", { phase: "Lost" })] });
    assert.deepEqual(out.problems, []);
  });

  it("puts hostDisks on the shared volume through file-ownership, and lists others as not capturable", () => {
    const volumes = [
      hostDisk("root", `${MOUNT}tenant/web/disk.img`),
      hostDisk("local", "/var/local/x.img"),
      pvc("data", "d"),
    ];
    const out = classify({ volumes, claims: [claim("d")], sharedVolume: shared([`${MOUNT}tenant/web/disk.img`]) });
    assert.deepEqual(out.problems, []);
    assert.deepEqual(out.sharedFiles, ["tenant/web/disk.img"]);
    assert.deepEqual(
      out.disks.map((d) => (d.kind === "hostDisk" ? [d.path, d.sharedPath] : [d.claimName])),
      [["/var/lib/shared/tenant/web/disk.img", "tenant/web/disk.img"], ["/var/local/x.img", undefined], ["d"]],
    );
  });

  it("keeps file-ownership's SharedFile verdict for a hostDisk another VM names too", () => {
    const disk = `${MOUNT}tenant/web/disk.img`;
    const out = classify({
      volumes: [hostDisk("root", disk), pvc("data", "d")],
      claims: [claim("d")],
      sharedVolume: shared([disk], [{ key: "other/thief", disks: ["tenant/web/disk.img"] }]),
    });
    assert.equal(out.missing?.reason, "SharedFile");
    assert.match(out.missing.message, /tenant\/web\/disk\.img is also named by VM other\/thief/);
    assert.equal(out.disks[0]?.kind === "hostDisk" && out.disks[0].sharedPath, undefined);
  });

  it("never assumes a shared path is the VM's own when the ownership given does not mention it", () => {
    const out = classify({
      volumes: [hostDisk("root", `${MOUNT}tenant/web/disk.img`)],
      sharedVolume: { relativePath, ownership: { files: [], problems: [] } },
    });
    assert.equal(out.missing?.reason, "UnsafeFile");
  });

  it("reports a VM with no data disk as NoDataDisk, or NoSharedDisk in the hostDisk-only world", () => {
    const only = [{ name: "cd", containerDisk: {} }, hostDisk("local", "/var/local/x.img")];
    const withClaims = classify({ volumes: only, sharedVolume: shared([]) });
    assert.equal(withClaims.missing?.reason, "NoDataDisk");
    assert.match(
      withClaims.missing.message,
      /no hostDisk on the shared volume and no PersistentVolumeClaim or DataVolume \(hostDisk \/var\/local\/x\.img is not on the shared volume\)/,
    );
    assert.deepEqual(withClaims.skipped, [{ volume: "cd", type: "containerDisk" }]);

    const hostOnly = classify({ volumes: [...only, pvc("data", "d")], claims: [claim("d")], claimsSupported: false });
    assert.equal(hostOnly.missing?.reason, "NoSharedDisk");
    assert.deepEqual(
      hostOnly.skipped.map((s) => s.type),
      ["containerDisk", "persistentVolumeClaim"],
    );
    assert.equal(noDiskReason(true), "NoDataDisk");
    assert.equal(noDiskReason(false), "NoSharedDisk");
  });

  it("orders problems by the documented check order: a final problem before a passing one", () => {
    const out = classify({
      volumes: [pvc("a", "pending"), pvc("b", "gone"), pvc("c", "Bad")],
      claims: [claim("pending", { phase: "Pending" })],
    });
    assert.deepEqual(
      out.problems.map((p) => p.reason),
      ["InvalidVolume", "ClaimNotFound", "ClaimNotBound"],
    );
    assert.equal(out.missing?.reason, "InvalidVolume");
    assert.deepEqual(VM_DISK_REASON_ORDER.slice(0, 5), [
      "InvalidVolume",
      "SharedFile",
      "UnsafeFile",
      "ClaimNotFound",
      "ClaimNotBound",
    ]);
  });

  it("accepts DNS labels only", () => {
    assert.ok(isDnsLabel("a"));
    assert.ok(isDnsLabel("web-root-0"));
    assert.ok(isDnsLabel("x".repeat(63)));
    assert.ok(!isDnsLabel("x".repeat(64)));
    assert.ok(!isDnsLabel("a.b"));
  });
});
