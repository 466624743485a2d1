// The operator's side of claims cut with Reflink: where "the filesystem clones" comes from (the PV's
// annotation, set by the user) and the step's Job mounting only those claims read-write.
import assert from "node:assert/strict";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { buildAgentJob, buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import { claimVolumes } from "../../../src/controllers/runtime/agent-job.js";
import { REFLINK_ANNOTATION, volumeReflink } from "../../../src/controllers/runtime/claim-methods.js";
import type { ObservedWorkload, PlannedClaim } from "../../../src/planning/index.js";

const backup: FederatedBackup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
  spec: { location: { persistentVolumeClaim: { claimName: "backups" } } },
};

const claim = (claimName: string, snapshotMethod: PlannedClaim["snapshotMethod"]): PlannedClaim => ({
  volume: `v-${claimName}`,
  claimName,
  sourceKind: "PersistentVolumeClaim",
  volumeMode: "Filesystem",
  snapshotMethod,
  why: `${snapshotMethod}, as spec.snapshot.method asks`,
});

const vm = (name: string, claims: PlannedClaim[]): ObservedWorkload => ({
  namespace: "vms",
  name,
  uid: name,
  phase: "Running",
  node: "n1",
  migrating: false,
  critical: false,
  priority: 0,
  files: [],
  claims,
});

describe("claims cut with Reflink (operator)", () => {
  it("a PV's filesystem clones when the user says so in its annotation; anything else is unknown", () => {
    const pv = (value?: string) => ({
      metadata: value === undefined ? {} : { annotations: { [REFLINK_ANNOTATION]: value } },
    });
    assert.equal(REFLINK_ANNOTATION, "fedbackup.io/reflink");
    assert.equal(volumeReflink(pv("true")), true);
    assert.equal(volumeReflink(pv("false")), false);
    assert.equal(volumeReflink(pv("yes")), undefined);
    assert.equal(volumeReflink(pv()), undefined);
  });

  it("claimVolumes mounts a claim whose access is ReadWrite writable, the others read-only", () => {
    const v = claimVolumes([
      { claimName: "b", volumeMode: "Filesystem", access: "ReadWrite" },
      { claimName: "a", volumeMode: "Filesystem" },
    ]);
    assert.deepEqual(v.volumes, [
      { name: "claim-0", persistentVolumeClaim: { claimName: "a", readOnly: true } },
      { name: "claim-1", persistentVolumeClaim: { claimName: "b" } },
    ]);
    assert.deepEqual(v.mounts, [
      { name: "claim-0", mountPath: "/var/lib/fedbackup/claims/a", readOnly: true },
      { name: "claim-1", mountPath: "/var/lib/fedbackup/claims/b" },
    ]);
  });

  it("the step's Job mounts the Reflink claims read-write and only those", () => {
    const step = buildNodeSnapshot(backup, 1, 1, "n1", [
      vm("a", [claim("pvc-r", "Reflink"), claim("pvc-c", "Copy")]),
      vm("b", [claim("pvc-x", "Copy")]),
    ]);
    const job = buildAgentJob(backup, step, { agentImage: "img" });
    const pod = (job.spec as { template: { spec: Record<string, unknown> } }).template.spec as {
      volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }>;
      containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
    };
    const byClaim = Object.fromEntries(
      pod.volumes.flatMap((v) =>
        v.persistentVolumeClaim?.claimName.startsWith("pvc-")
          ? [[v.persistentVolumeClaim.claimName, v.persistentVolumeClaim.readOnly ?? false]]
          : [],
      ),
    );
    assert.deepEqual(byClaim, { "pvc-c": true, "pvc-r": false, "pvc-x": true });
    const mounts = Object.fromEntries(
      pod.containers[0]!.volumeMounts.filter((m) => m.mountPath.includes("/claims/")).map((m) => [
        m.mountPath,
        m.readOnly ?? false,
      ]),
    );
    assert.deepEqual(mounts, {
      "/var/lib/fedbackup/claims/pvc-c": true,
      "/var/lib/fedbackup/claims/pvc-r": false,
      "/var/lib/fedbackup/claims/pvc-x": true,
    });
  });
});
