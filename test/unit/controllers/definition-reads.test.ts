// The operator's side of VM definitions: what a backup step's agent may read for each VM, decided from the
// cached VirtualMachine, recorded in the step's spec, and granted by name.
import assert from "node:assert/strict";
import type { VirtualMachine } from "../../../src/api/kubevirt.js";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { buildNodeSnapshot, stepAccessOf } from "../../../src/controllers/federatedbackup/builders.js";
import { withDefinitionReads } from "../../../src/controllers/runtime/definition-reads.js";
import type { ObservedWorkload } from "../../../src/planning/index.js";

const backup = (includeSecrets?: boolean): FederatedBackup => ({
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
  spec: {
    location: { persistentVolumeClaim: { claimName: "backups" } },
    ...(includeSecrets !== undefined ? { includeSecrets } : {}),
  },
});

const workload: ObservedWorkload = {
  namespace: "vms",
  name: "db",
  uid: "uid-db",
  phase: "Running",
  node: "n1",
  migrating: false,
  critical: false,
  priority: 0,
  files: ["db.img"],
};

const vm: VirtualMachine = {
  metadata: { name: "db", namespace: "vms" },
  spec: {
    dataVolumeTemplates: [{ metadata: { name: "db-root" } }],
    template: {
      spec: {
        volumes: [
          { name: "root", dataVolume: { name: "db-root" } },
          { name: "data", dataVolume: { name: "db-data" } },
          { name: "ci", cloudInitNoCloud: { secretRef: { name: "db-ci" } } },
        ],
        accessCredentials: [{ sshPublicKey: { source: { secret: { secretName: "keys" } } } }],
      },
    },
  },
};

describe("VM definition reads (operator)", () => {
  it("names the standalone DataVolumes of the VM, and its Secrets only with includeSecrets", () => {
    assert.deepEqual(withDefinitionReads(workload, vm, false), { ...workload, dataVolumes: ["db-data"] });
    assert.deepEqual(withDefinitionReads(workload, vm, true), {
      ...workload,
      dataVolumes: ["db-data"],
      secrets: ["db-ci", "keys"],
    });
    assert.equal(withDefinitionReads(workload, undefined, true), workload);
    assert.equal(
      withDefinitionReads(workload, { ...vm, metadata: { name: "other", namespace: "vms" } }, true),
      workload,
    );
  });

  it("records them in the step's spec and grants get on exactly those names; Secrets only with includeSecrets", () => {
    const reads = withDefinitionReads(workload, vm, true);
    const withSecrets = buildNodeSnapshot(backup(true), 1, 1, "n1", [reads]);
    withSecrets.metadata.uid = "step-uid";
    assert.equal(withSecrets.spec.includeSecrets, true);
    assert.deepEqual(withSecrets.spec.workloads![0]!.dataVolumes, ["db-data"]);
    assert.deepEqual(withSecrets.spec.workloads![0]!.secrets, ["db-ci", "keys"]);
    assert.deepEqual(stepAccessOf(withSecrets).workloads, [
      { namespace: "vms", name: "db", dataVolumes: ["db-data"], secrets: ["db-ci", "keys"] },
    ]);

    // A workload that names Secrets in a backup without includeSecrets: none reach the step or its grant.
    const without = buildNodeSnapshot(backup(), 1, 1, "n1", [reads]);
    without.metadata.uid = "step-uid";
    assert.equal(without.spec.includeSecrets, undefined);
    assert.equal(without.spec.workloads![0]!.secrets, undefined);
    assert.deepEqual(stepAccessOf(without).workloads, [{ namespace: "vms", name: "db", dataVolumes: ["db-data"] }]);
  });
});
