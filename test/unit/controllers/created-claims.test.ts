import assert from "node:assert/strict";
import type { HostDiskVolume, VirtualMachine } from "../../../src/api/kubevirt.js";
import type { NodeRestoreSpecWorkloadClaim, WorkloadRestore } from "../../../src/api/v1alpha1/index.js";
import {
  ANNOTATION_CDI_POPULATED_FOR,
  ANNOTATION_CREATED_BY_RESTORE,
  ANNOTATION_SELECTED_NODE,
  claimsNamedBy,
  createdClaim,
} from "../../../src/controllers/workloadrestore/created-claims.js";

const restore = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "WorkloadRestore",
  metadata: { name: "r1", namespace: "vms" },
  spec: { backupRef: { name: "nightly" } },
} as WorkloadRestore;

const vm = { namespace: "vms", name: "db-0-copy" };

const claim = (o: Partial<NodeRestoreSpecWorkloadClaim> = {}): NodeRestoreSpecWorkloadClaim => ({
  volume: "root",
  claimName: "db-0-copy-root",
  volumeMode: "Block",
  create: { accessModes: ["ReadWriteMany"], storageClassName: "fast", storage: "10737418240" },
  ...o,
});

describe("createdClaim", () => {
  it("is an empty claim of the shape asked, in the VM's namespace, provisioned for the restore node", () => {
    assert.deepEqual(createdClaim(restore, vm, claim(), "node-a"), {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: {
        name: "db-0-copy-root",
        namespace: "vms",
        annotations: { [ANNOTATION_CREATED_BY_RESTORE]: "vms/r1", [ANNOTATION_SELECTED_NODE]: "node-a" },
      },
      spec: {
        accessModes: ["ReadWriteMany"],
        volumeMode: "Block",
        storageClassName: "fast",
        resources: { requests: { storage: "10737418240" } },
      },
    });
  });

  it("marks a DataVolume's claim populated for the DataVolume of its name, and only that", () => {
    const dv = createdClaim(restore, vm, claim({ sourceKind: "DataVolume" }), "node-a");
    assert.equal(dv.metadata.annotations?.[ANNOTATION_CDI_POPULATED_FOR], "db-0-copy-root");
    const pvc = createdClaim(restore, vm, claim({ sourceKind: "PersistentVolumeClaim" }), "node-a");
    assert.ok(!(ANNOTATION_CDI_POPULATED_FOR in pvc.metadata.annotations!));
  });

  it("names a class only when one is given (else the cluster's default class)", () => {
    const created = createdClaim(
      restore,
      vm,
      claim({ create: { accessModes: ["ReadWriteOnce"], storage: "1Gi" } }),
      "n",
    );
    assert.ok(!("storageClassName" in (created as unknown as { spec: object }).spec));
  });

  it("does not share the access modes array with the step", () => {
    const c = claim();
    const created = createdClaim(restore, vm, c, "node-a") as unknown as { spec: { accessModes: string[] } };
    created.spec.accessModes.push("ReadOnlyMany");
    assert.deepEqual(c.create!.accessModes, ["ReadWriteMany"]);
  });
});

describe("claimsNamedBy", () => {
  const named = (namespace: string, volumes: HostDiskVolume[]): VirtualMachine => ({
    metadata: { name: "x", namespace },
    spec: { template: { spec: { volumes } } },
  });

  it("lists every claim and DataVolume a VM names, as namespace/name", () => {
    const vms = [
      named("vms", [
        { name: "a", persistentVolumeClaim: { claimName: "db-0-root" } },
        { name: "b", dataVolume: { name: "db-0-data" } },
        { name: "c", hostDisk: { path: "/disks/vms/db-0/disk0.img" } },
        { name: "d", containerDisk: { image: "x" } },
      ]),
      named("qa", [{ name: "a", persistentVolumeClaim: { claimName: "db-0-root" } }]),
    ];
    assert.deepEqual([...claimsNamedBy(vms)].sort(), ["qa/db-0-root", "vms/db-0-data", "vms/db-0-root"]);
  });

  it("is empty for VMs without a spec, a template or volumes", () => {
    const vms: VirtualMachine[] = [
      { metadata: { name: "a", namespace: "vms" } },
      { metadata: { name: "b", namespace: "vms" }, spec: {} },
      { metadata: { name: "c", namespace: "vms" }, spec: { template: {} } },
    ];
    assert.equal(claimsNamedBy(vms).size, 0);
  });
});
