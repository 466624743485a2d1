import assert from "node:assert/strict";
import type { VirtualMachineInstance } from "../../../src/api/kubevirt.js";
import { withoutSharedVolume } from "../../../src/controllers/runtime/file-claims.js";
import { observeWorkload } from "../../../src/controllers/runtime/observe.js";
import { captureProblem } from "../../../src/planning/capture-problem.js";

const vmi = (volumes: NonNullable<VirtualMachineInstance["spec"]>["volumes"]): VirtualMachineInstance => ({
  apiVersion: "kubevirt.io/v1",
  kind: "VirtualMachineInstance",
  metadata: { name: "vm", namespace: "vms", uid: "u" },
  spec: { volumes },
  status: { phase: "Running", nodeName: "n1" },
});

describe("runtime/file-claims withoutSharedVolume", () => {
  it("keeps a VM with hostDisk volumes out (NoSharedDisk), saying no spec.sharedVolume is set, even beside claims", () => {
    const v = vmi([
      { name: "root", hostDisk: { path: "/var/lib/vmdisks/vms/vm/root.img", type: "Disk" } },
      { name: "data", persistentVolumeClaim: { claimName: "vm-data" } },
    ]);
    const w = withoutSharedVolume(observeWorkload(v, "/"), v);
    assert.deepEqual(w.files, []);
    const problem = captureProblem({
      ...w,
      claims: [{ volume: "data", claimName: "vm-data", sourceKind: "PersistentVolumeClaim", volumeMode: "Filesystem" }],
    });
    assert.equal(problem?.reason, "NoSharedDisk");
    assert.match(problem?.detail ?? "", /hostDisk volumes "root" cannot be captured: no spec\.sharedVolume is set/);
  });

  it("leaves a VM on claims only as it is, with no file", () => {
    const v = vmi([{ name: "data", persistentVolumeClaim: { claimName: "vm-data" } }]);
    const w = withoutSharedVolume(observeWorkload(v, "/"), v);
    assert.deepEqual([w.files, w.fileProblem], [[], undefined]);
  });
});
