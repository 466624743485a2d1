import assert from "node:assert/strict";
import type { VirtualMachineInstance } from "../../../src/api/kubevirt.js";
import { claimVolumes } from "../../../src/controllers/runtime/agent-job.js";
import {
  boundVolumesOf,
  observeClaim,
  restorableClaimsNow,
  withClaims,
  withSkippedVolumes,
} from "../../../src/controllers/runtime/claim-disks.js";
import type { ObservedWorkload } from "../../../src/planning/index.js";

const workload = (namespace: string): ObservedWorkload => ({
  namespace,
  name: "db",
  uid: "u",
  phase: "Running",
  node: "n1",
  migrating: false,
  critical: false,
  priority: 0,
  files: [],
});

const vmi = (volumes: NonNullable<VirtualMachineInstance["spec"]>["volumes"]): VirtualMachineInstance => ({
  metadata: { namespace: "ns", name: "db" },
  spec: { volumes },
});

const bound = (name: string, volumeMode?: string) =>
  observeClaim({
    metadata: { name },
    spec: { volumeMode, accessModes: ["ReadWriteOnce"], storageClassName: "fast" },
    status: { phase: "Bound", capacity: { storage: "2Gi" } },
  });

describe("claim disks of a backup's VMs", () => {
  it("reads a claim's mode, size, class and phase (Filesystem when volumeMode is unset)", () => {
    assert.deepEqual(bound("a"), {
      name: "a",
      phase: "Bound",
      volumeMode: "Filesystem",
      accessModes: ["ReadWriteOnce"],
      capacityBytes: 2 * 1024 ** 3,
      storageClassName: "fast",
    });
    assert.equal(observeClaim({ metadata: { name: "p" } }).phase, "Pending");
  });

  it("lists a VM's claims once each, a DataVolume's as DataVolume, skipping non-data volumes", () => {
    const w = withClaims(
      workload("ns"),
      vmi([
        { name: "root", dataVolume: { name: "db-root" } },
        { name: "data", persistentVolumeClaim: { claimName: "db-data" } },
        { name: "again", persistentVolumeClaim: { claimName: "db-data" } },
        { name: "cloudinit", cloudInitNoCloud: { userData: "x" } },
      ]),
      "ns",
      [bound("db-root", "Block"), bound("db-data")],
    );
    assert.equal(w.claimProblem, undefined);
    assert.deepEqual(
      w.claims?.map(({ volume, claimName, sourceKind, volumeMode }) => ({ volume, claimName, sourceKind, volumeMode })),
      [
        // Named by two volumes: the first by name stands for both.
        { volume: "again", claimName: "db-data", sourceKind: "PersistentVolumeClaim", volumeMode: "Filesystem" },
        { volume: "root", claimName: "db-root", sourceKind: "DataVolume", volumeMode: "Block" },
      ],
    );
  });

  it("a VM without claims is left as it was", () => {
    const w = workload("ns");
    assert.equal(withClaims(w, vmi([{ name: "d", hostDisk: { path: "/x/d.img" } }]), "ns", []), w);
  });

  it("says why a claim cannot be captured: missing, not bound, not a DNS label, or of another namespace", () => {
    const problem = (claims: ReturnType<typeof bound>[], claimName: string, ns = "ns") =>
      withClaims(workload(ns), vmi([{ name: "d", persistentVolumeClaim: { claimName } }]), "ns", claims).claimProblem
        ?.reason;
    assert.equal(problem([], "gone"), "ClaimNotFound");
    assert.equal(problem([{ ...bound("p"), phase: "Pending" }], "p"), "ClaimNotBound");
    assert.equal(problem([], "Not_A_Label"), "InvalidVolume");
    assert.equal(problem([bound("x")], "x", "other"), "ClaimInOtherNamespace");
  });

  it("the Job mounts each claim once, read-only: Filesystem ones as directories, Block ones as devices", () => {
    const v = claimVolumes([
      { claimName: "b", volumeMode: "Block" },
      { claimName: "a", volumeMode: "Filesystem" },
      { claimName: "b", volumeMode: "Block" },
    ]);
    assert.deepEqual(v.volumes, [
      { name: "claim-0", persistentVolumeClaim: { claimName: "a", readOnly: true } },
      { name: "claim-1", persistentVolumeClaim: { claimName: "b", readOnly: true } },
    ]);
    assert.deepEqual(v.mounts, [{ name: "claim-0", mountPath: "/var/lib/fedbackup/claims/a", readOnly: true }]);
    assert.deepEqual(v.devices, [{ name: "claim-1", devicePath: "/var/lib/fedbackup/devices/b" }]);
  });
});

describe("claims a restore may write", () => {
  const vm = (namespace: string, name: string, volumes: NonNullable<VirtualMachineInstance["spec"]>["volumes"]) => ({
    metadata: { namespace, name },
    spec: { template: { spec: { volumes } } },
  });

  it("gives each VM of the namespace the Bound claims its template alone names, with their mode", () => {
    const owned = restorableClaimsNow(
      [
        vm("ns", "db", [
          { name: "root", dataVolume: { name: "db-root" } },
          { name: "logs", persistentVolumeClaim: { claimName: "db-logs" } },
          { name: "shared", persistentVolumeClaim: { claimName: "scratch" } },
        ]),
        vm("ns", "web", [
          { name: "root", persistentVolumeClaim: { claimName: "web-root" } },
          { name: "scratch", persistentVolumeClaim: { claimName: "scratch" } },
        ]),
        vm("other", "db", [{ name: "root", persistentVolumeClaim: { claimName: "db-root" } }]),
      ],
      "ns",
      [bound("db-root"), bound("db-logs", "Block"), bound("scratch"), bound("web-root")],
    );
    assert.deepEqual(owned.get("ns/db"), [
      { volume: "logs", claimName: "db-logs", sourceKind: "PersistentVolumeClaim", volumeMode: "Block" },
      { volume: "root", claimName: "db-root", sourceKind: "DataVolume", volumeMode: "Filesystem" },
    ]);
    assert.deepEqual(
      owned.get("ns/web")?.map((c) => c.claimName),
      ["web-root"],
    );
    assert.equal(owned.has("other/db"), false);
  });

  it("gives no claim that is missing or not Bound", () => {
    const pending = observeClaim({ metadata: { name: "p" }, status: { phase: "Pending" } });
    const owned = restorableClaimsNow(
      [
        vm("ns", "db", [
          { name: "a", persistentVolumeClaim: { claimName: "p" } },
          { name: "b", persistentVolumeClaim: { claimName: "gone" } },
        ]),
      ],
      "ns",
      [pending],
    );
    assert.equal(owned.has("ns/db"), false);
  });
});

describe("what a backup step records of a VM's volumes", () => {
  it("each claim's access modes, StorageClass and capacity", () => {
    const w = withClaims(workload("ns"), vmi([{ name: "root", persistentVolumeClaim: { claimName: "a" } }]), "ns", [
      bound("a", "Block"),
    ]);
    assert.deepEqual(w.claims, [
      {
        volume: "root",
        claimName: "a",
        sourceKind: "PersistentVolumeClaim",
        volumeMode: "Block",
        accessModes: ["ReadWriteOnce"],
        storageClassName: "fast",
        sizeBytes: 2 * 1024 ** 3,
      },
    ]);
  });

  it("the volumes that are not data, for any VM, and nothing for a VM without them", () => {
    const w = withSkippedVolumes(
      workload("ns"),
      vmi([
        { name: "disk0", hostDisk: { path: "/shared/ns/db/disk0.img", type: "Disk" } },
        { name: "boot", containerDisk: { image: "quay.io/containerdisks/fedora" } },
        { name: "init", cloudInitNoCloud: { userData: "#cloud-config" } },
      ] as NonNullable<VirtualMachineInstance["spec"]>["volumes"]),
    );
    assert.deepEqual(w.skippedVolumes, [
      { volume: "boot", type: "containerDisk" },
      { volume: "init", type: "cloudInitNoCloud" },
    ]);
    const plain = withSkippedVolumes(workload("ns"), vmi([{ name: "disk0", hostDisk: { path: "/x", type: "Disk" } }]));
    assert.equal("skippedVolumes" in plain, false);
  });
});

describe("the volumes the listed claims are bound to", () => {
  it("maps each bound claim to its PersistentVolume, leaving out one not bound yet", () => {
    assert.deepEqual(
      [
        ...boundVolumesOf([
          { metadata: { name: "a" }, spec: { volumeName: "pv-a" } },
          { metadata: { name: "pending" }, spec: {} },
        ]),
      ],
      [["a", "pv-a"]],
    );
  });
});
