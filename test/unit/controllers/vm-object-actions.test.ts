import assert from "node:assert/strict";
import type { NodeRestoreSpecWorkload, NodeRestoreStatusResult } from "../../../src/api/v1alpha1/index.js";
import {
  ANNOTATION_RESTORED_FROM,
  definitionOutcome,
  replacement,
  reportedDefinition,
  vmCreation,
  type VmCreationInput,
} from "../../../src/controllers/workloadrestore/vm-object-actions.js";
import { ANNOTATION_RESTORE_HOLD, type VmHold, type VmView } from "../../../src/controllers/workloadrestore/vm-hold.js";
import { copyMacAddress } from "../../../src/planning/copy-identity.js";
import { ANNOTATION_CDI_PREPOPULATED } from "../../../src/planning/recreated-vm.js";

const CAPTURED_MAC = "52:54:00:aa:bb:cc";

// The captured spec of vms/db-0: a DataVolume template, a claim, a hostDisk file, pinned to node-a.
function capturedSpec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    running: true,
    dataVolumeTemplates: [{ metadata: { name: "db-0-root" }, spec: { storage: {} } }],
    template: {
      spec: {
        domain: { devices: { interfaces: [{ name: "default", masquerade: {}, macAddress: CAPTURED_MAC }] } },
        nodeSelector: { "kubernetes.io/hostname": "node-a" },
        volumes: [
          { name: "root", dataVolume: { name: "db-0-root" } },
          { name: "data", persistentVolumeClaim: { claimName: "shared-data" } },
          { name: "scratch", hostDisk: { path: "/disks/vms/db-0/disk0.img", type: "Disk" } },
        ],
      },
    },
    ...over,
  };
}

function definitionJson(spec = capturedSpec()): Record<string, unknown> {
  return {
    schemaVersion: 1,
    virtualMachine: {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachine",
      metadata: { name: "db-0", namespace: "vms", labels: { app: "db" } },
      spec,
    },
    dataVolumes: [],
    references: { secrets: [], configMaps: [] },
  };
}

const report = (definition?: Record<string, unknown>): NodeRestoreStatusResult => ({
  namespace: "vms",
  name: "db-0-copy",
  restored: true,
  ...(definition ? { definition } : {}),
});

// A copy of vms/db-0 as vms/db-0-copy, its disks renamed.
function copyWorkload(o: Partial<NodeRestoreSpecWorkload> = {}): NodeRestoreSpecWorkload {
  return {
    namespace: "vms",
    name: "db-0-copy",
    backup: "nightly",
    backupPath: "nightly-0123",
    action: "RestoreThenStart",
    definition: "Create",
    reportDefinition: true,
    source: { namespace: "vms", name: "db-0" },
    files: ["vms/db-0-copy/disk0.img"],
    renamedFiles: [{ from: "vms/db-0/disk0.img", to: "vms/db-0-copy/disk0.img" }],
    claims: [
      { volume: "root", claimName: "db-0-copy-root", capturedClaimName: "db-0-root", volumeMode: "Block" },
      {
        volume: "data",
        claimName: "db-0-copy-shared-data",
        capturedClaimName: "shared-data",
        volumeMode: "Filesystem",
      },
    ],
    ...o,
  };
}

// vms/db-0 itself, deleted and restored under its own names.
const ownWorkload = (): NodeRestoreSpecWorkload => {
  const { source: _, renamedFiles: __, ...rest } = copyWorkload();
  return {
    ...rest,
    name: "db-0",
    files: ["vms/db-0/disk0.img"],
    claims: [
      { volume: "root", claimName: "db-0-root", volumeMode: "Block" },
      { volume: "data", claimName: "shared-data", volumeMode: "Filesystem" },
    ],
  };
};

const creation = (o: Partial<VmCreationInput> = {}): VmCreationInput => ({
  workload: copyWorkload(),
  report: report(definitionJson()),
  nodeMountPath: "/disks",
  owner: "WorkloadRestore/vms/r1/uid-1",
  backup: "vms/nightly",
  keepIdentity: false,
  missingReferences: [],
  ...o,
});

interface PodSpec {
  domain: { devices: { interfaces: Array<{ macAddress?: string }> } };
  volumes: Array<{ name: string; dataVolume?: { name: string }; persistentVolumeClaim?: { claimName: string } }>;
  nodeSelector?: Record<string, string>;
}
const podSpecOf = (spec: Record<string, unknown>) => (spec.template as { spec: PodSpec }).spec;

function created(input: VmCreationInput) {
  const result = vmCreation(input);
  assert.equal(result.kind, "Create", result.kind === "Refuse" ? result.message : "");
  return result;
}

function refused(input: VmCreationInput) {
  const result = vmCreation(input);
  assert.equal(result.kind, "Refuse");
  return result;
}

describe("reportedDefinition", () => {
  it("is undefined without a report or a definition in it", () => {
    assert.equal(reportedDefinition(undefined), undefined);
    assert.equal(reportedDefinition(report()), undefined);
  });

  it("is the parsed definition, or the parse error", () => {
    const parsed = reportedDefinition(report(definitionJson()));
    assert.ok(parsed && !("error" in parsed));
    assert.equal(parsed.virtualMachine.metadata.name, "db-0");
    const broken = reportedDefinition(report({ ...definitionJson(), schemaVersion: 2 }));
    assert.ok(broken && "error" in broken);
    assert.match(broken.error, /schemaVersion/);
  });
});

describe("vmCreation", () => {
  it("refuses when the agent reported no definition", () => {
    const r = refused(creation({ report: report() }));
    assert.equal(r.reason, "DefinitionNotReported");
    assert.match(r.message, /reported no captured definition/);
    assert.equal(refused(creation({ report: undefined })).reason, "DefinitionNotReported");
  });

  it("refuses a definition that does not parse, saying why", () => {
    const bad = definitionJson();
    (bad.virtualMachine as { metadata: Record<string, unknown> }).metadata.uid = "abc";
    const r = refused(creation({ report: report(bad) }));
    assert.equal(r.reason, "DefinitionNotReported");
    assert.match(r.message, /not valid \(.*uid/);
  });

  it("refuses a definition naming a claim its capture did not hold", () => {
    const spec = capturedSpec();
    podSpecOf(spec).volumes.push({ name: "x", persistentVolumeClaim: { claimName: "db-1-root" } });
    const r = refused(creation({ report: report(definitionJson(spec)) }));
    assert.equal(r.reason, "DefinitionMismatch");
    assert.match(r.message, /claim "db-1-root"/);
  });

  it("refuses a definition naming a file its capture did not hold", () => {
    const r = refused(creation({ workload: copyWorkload({ files: [], renamedFiles: [] }) }));
    assert.equal(r.reason, "DefinitionMismatch");
    assert.match(r.message, /hostDisk "\/disks\/vms\/db-0\/disk0\.img"/);
    // The same path under another mount is not the captured file.
    assert.equal(refused(creation({ nodeMountPath: "/other" })).reason, "DefinitionMismatch");
  });

  it("creates a VM captured running halted and held, its hold starting it as captured", () => {
    for (const [over, strategy] of [
      [{ running: true }, "Always"],
      [{ running: undefined, runStrategy: "RerunOnFailure" }, "RerunOnFailure"],
    ] as const) {
      const c = created(creation({ report: report(definitionJson(capturedSpec(over))) }));
      assert.equal(c.held, true);
      assert.equal(c.runStrategy, "Halted");
      const vm = c.objects.virtualMachine;
      assert.equal(vm.spec.runStrategy, "Halted");
      assert.ok(!("running" in vm.spec));
      const hold = JSON.parse(vm.metadata.annotations![ANNOTATION_RESTORE_HOLD]!) as VmHold;
      assert.deepEqual(hold, {
        owner: "WorkloadRestore/vms/r1/uid-1",
        runStrategy: strategy,
        activeNode: "",
        nodeSelector: "node-a",
      });
    }
  });

  it("records no node selector in the hold when the captured VM was not pinned", () => {
    const spec = capturedSpec();
    delete podSpecOf(spec).nodeSelector;
    const c = created(creation({ report: report(definitionJson(spec)) }));
    const hold = JSON.parse(c.objects.virtualMachine.metadata.annotations![ANNOTATION_RESTORE_HOLD]!) as VmHold;
    assert.ok(!("nodeSelector" in hold));
  });

  it("creates a VM captured Halted or Manual with that strategy, not held", () => {
    for (const strategy of ["Halted", "Manual"]) {
      const spec = capturedSpec({ running: undefined, runStrategy: strategy });
      const c = created(creation({ report: report(definitionJson(spec)) }));
      assert.equal(c.held, false);
      assert.equal(c.runStrategy, strategy);
      assert.equal(c.objects.virtualMachine.spec.runStrategy, strategy);
      assert.ok(!(ANNOTATION_RESTORE_HOLD in c.objects.virtualMachine.metadata.annotations!));
    }
    assert.equal(
      created(creation({ report: report(definitionJson(capturedSpec({ running: false }))) })).runStrategy,
      "Halted",
    );
  });

  it("creates a VM whose Secrets or ConfigMaps are missing halted, without a hold", () => {
    const c = created(creation({ missingReferences: ["Secret db-0-ssh"] }));
    assert.equal(c.held, false);
    assert.equal(c.runStrategy, "Halted");
    assert.equal(c.objects.virtualMachine.spec.runStrategy, "Halted");
    assert.ok(!(ANNOTATION_RESTORE_HOLD in c.objects.virtualMachine.metadata.annotations!));
  });

  it("says where a copy came from, and gives it its renamed disks and a new identity", () => {
    const vm = created(creation()).objects.virtualMachine;
    assert.equal(vm.metadata.name, "db-0-copy");
    assert.equal(vm.metadata.annotations![ANNOTATION_RESTORED_FROM], "vms/nightly: vms/db-0");
    const podSpec = podSpecOf(vm.spec);
    assert.deepEqual(
      podSpec.volumes.map((v) => v.dataVolume?.name ?? v.persistentVolumeClaim?.claimName ?? ""),
      ["db-0-copy-root", "db-0-copy-shared-data", ""],
    );
    assert.deepEqual(podSpec.volumes[2], {
      name: "scratch",
      hostDisk: { path: "/disks/vms/db-0-copy/disk0.img", type: "Disk" },
    });
    const template = (vm.spec.dataVolumeTemplates as Array<{ metadata: { annotations: Record<string, string> } }>)[0]!;
    assert.equal(template.metadata.annotations[ANNOTATION_CDI_PREPOPULATED], "db-0-copy-root");
    assert.equal(
      podSpec.domain.devices.interfaces[0]!.macAddress,
      copyMacAddress({ namespace: "vms", name: "db-0-copy" }, "default"),
    );
  });

  it("keeps a copy's identity with keepIdentity", () => {
    const vm = created(creation({ keepIdentity: true })).objects.virtualMachine;
    assert.equal(podSpecOf(vm.spec).domain.devices.interfaces[0]!.macAddress, CAPTURED_MAC);
  });

  it("re-creates a deleted VM under its own names and identity", () => {
    const vm = created(creation({ workload: ownWorkload() })).objects.virtualMachine;
    assert.equal(vm.metadata.name, "db-0");
    assert.equal(vm.metadata.annotations![ANNOTATION_RESTORED_FROM], "vms/nightly: vms/db-0");
    const podSpec = podSpecOf(vm.spec);
    assert.equal(podSpec.volumes[1]!.persistentVolumeClaim?.claimName, "shared-data");
    assert.equal(podSpec.domain.devices.interfaces[0]!.macAddress, CAPTURED_MAC);
  });
});

const hold: VmHold = { owner: "WorkloadRestore/vms/r1/uid-1", runStrategy: "Halted", activeNode: "node-b" };
// h null: a VM the restore does not hold.
const view = (spec: Record<string, unknown> | undefined, h: VmHold | null = hold): VmView => ({
  exists: true,
  runStrategy: "Halted",
  ...(h ? { hold: h } : {}),
  ...(spec ? { spec } : {}),
});

describe("replacement", () => {
  it("is undefined when the spec is the captured one but for run strategy and node pin", () => {
    const current = capturedSpec({ running: undefined, runStrategy: "Halted" });
    podSpecOf(current).nodeSelector = { "kubernetes.io/hostname": "node-b" };
    assert.equal(replacement(view(current), report(definitionJson())), undefined);
  });

  it("is undefined without a valid reported definition, or without the restore's hold", () => {
    const changed = capturedSpec({ extra: true });
    assert.equal(replacement(view(changed), report()), undefined);
    assert.equal(replacement(view(changed), report({ schemaVersion: 9 })), undefined);
    assert.equal(replacement(view(changed, null), report(definitionJson())), undefined);
  });

  it("puts the captured spec back halted, its hold starting it with the captured strategy and pin", () => {
    const current = capturedSpec({ running: undefined, runStrategy: "Halted" });
    podSpecOf(current).volumes.pop();
    const r = replacement(view(current, { ...hold, nodeSelector: "node-z" }), report(definitionJson()));
    assert.ok(r);
    const expected = capturedSpec({ runStrategy: "Halted" });
    delete expected.running;
    assert.deepEqual(r.spec, expected);
    assert.deepEqual(r.hold, { ...hold, runStrategy: "Always", nodeSelector: "node-a" });
  });

  it("drops the hold's node selector when the captured VM was not pinned", () => {
    const captured = capturedSpec({ running: undefined, runStrategy: "Manual" });
    delete podSpecOf(captured).nodeSelector;
    const r = replacement(view({ other: true }, { ...hold, nodeSelector: "node-z" }), report(definitionJson(captured)));
    assert.ok(r);
    assert.deepEqual(r.hold, { ...hold, runStrategy: "Manual" });
  });
});

describe("definitionOutcome", () => {
  const w = (definition: NodeRestoreSpecWorkload["definition"]) => ({ ...ownWorkload(), definition });

  it("is Created for a created VM, whatever was reported", () => {
    assert.equal(definitionOutcome(w("Create"), view(undefined), undefined), "Created");
  });

  it("is Replaced for Replace with a valid definition, undefined without one", () => {
    assert.equal(definitionOutcome(w("Replace"), view({ other: true }), report(definitionJson())), "Replaced");
    assert.equal(definitionOutcome(w("Replace"), view({ other: true }), report()), undefined);
  });

  it("is Matches or Kept for Keep, as the spec compares with the captured one", () => {
    const same = capturedSpec({ running: false });
    assert.equal(definitionOutcome(w("Keep"), view(same), report(definitionJson())), "Matches");
    assert.equal(definitionOutcome(w("Keep"), view(capturedSpec({ extra: 1 })), report(definitionJson())), "Kept");
    assert.equal(definitionOutcome(w("Keep"), view(same), report({ bad: true })), undefined);
  });
});
