import assert from "node:assert/strict";
import { copyFirmwareUuid, copyMacAddress, copySerial } from "../../../src/planning/copy-identity.js";
import {
  ANNOTATION_CDI_ALLOW_CLAIM_ADOPTION,
  ANNOTATION_CDI_PREPOPULATED,
  capturedRunStrategy,
  comparableSpec,
  foreignDisksOf,
  recreatedObjects,
  type RecreateOptions,
} from "../../../src/planning/recreated-vm.js";
import type { VmDefinition } from "../../../src/planning/vm-definition.js";

const CAPTURED_MAC = "52:54:00:aa:bb:cc";
const CAPTURED_UUID = "5d307ca9-b3ef-428c-8861-06e72d69f223";

// A captured db-0 in vms: a DataVolume template, a claim, a hostDisk file, a standalone DataVolume, a pinned node.
function definition(spec: Record<string, unknown> = {}): VmDefinition {
  return {
    schemaVersion: 1,
    virtualMachine: {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachine",
      metadata: {
        name: "db-0",
        namespace: "vms",
        labels: { app: "db" },
        annotations: { "team.example.com/owner": "alice" },
      },
      spec: {
        running: true,
        dataVolumeTemplates: [
          {
            metadata: { name: "db-0-root", annotations: { "team.example.com/tier": "gold" } },
            spec: { storage: { resources: { requests: { storage: "10Gi" } } } },
          },
        ],
        template: {
          metadata: { labels: { app: "db" } },
          spec: {
            domain: {
              devices: {
                interfaces: [
                  { name: "default", masquerade: {}, macAddress: CAPTURED_MAC },
                  { name: "storage", bridge: {} },
                ],
              },
              firmware: { uuid: CAPTURED_UUID, serial: "SERIAL-0001" },
            },
            nodeSelector: { "kubernetes.io/hostname": "node-a", disktype: "ssd" },
            volumes: [
              { name: "root", dataVolume: { name: "db-0-root" } },
              { name: "data", persistentVolumeClaim: { claimName: "shared-data" } },
              { name: "scratch", hostDisk: { path: "/disks/vms/db-0/disk0.img", type: "Disk" } },
              { name: "import", dataVolume: { name: "db-0-import" } },
              { name: "cloudinit", cloudInitNoCloud: { userData: "#cloud-config" } },
            ],
          },
        },
        ...spec,
      },
    },
    dataVolumes: [
      {
        apiVersion: "cdi.kubevirt.io/v1beta1",
        kind: "DataVolume",
        metadata: { name: "db-0-import", namespace: "vms", labels: { app: "db" }, annotations: { keep: "me" } },
        spec: { source: { http: { url: "https://images.example.com/db.qcow2" } }, storage: {} },
      },
    ],
    references: { secrets: [], configMaps: [] },
  };
}

const source = { namespace: "vms", name: "db-0" };
const copy = { namespace: "vms", name: "db-0-copy" };

const copyOptions = (o: Partial<RecreateOptions> = {}): RecreateOptions => ({
  source,
  target: copy,
  claimNames: new Map([
    ["db-0-root", "db-0-copy-root"],
    ["shared-data", "db-0-copy-shared-data"],
    ["db-0-import", "db-0-copy-import"],
  ]),
  renamedFiles: [{ from: "vms/db-0/disk0.img", to: "vms/db-0-copy/disk0.img" }],
  newIdentity: true,
  runStrategy: "Halted",
  annotations: { "fedbackup.io/restored-from": "vms/nightly: vms/db-0" },
  ...o,
});

// The parts of a VirtualMachine spec these tests look at.
interface Volume {
  name: string;
  dataVolume?: { name: unknown };
  persistentVolumeClaim?: { claimName: unknown };
  hostDisk?: { path: unknown };
  [source: string]: unknown;
}
interface PodSpec {
  domain: {
    devices: { interfaces: Array<{ name: string; macAddress?: string }> };
    firmware: Record<string, unknown>;
  };
  nodeSelector: Record<string, string>;
  volumes: Volume[];
}
interface VmSpec {
  dataVolumeTemplates: Array<{ metadata: Record<string, unknown>; spec: unknown }>;
  template: { spec: PodSpec };
}
const vmSpec = (spec: Record<string, unknown>) => spec as unknown as VmSpec;
const podSpecOf = (spec: Record<string, unknown>): PodSpec => vmSpec(spec).template.spec;
const volume = (spec: Record<string, unknown>, name: string): Volume =>
  podSpecOf(spec).volumes.find((v) => v.name === name)!;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe("capturedRunStrategy", () => {
  it("is spec.runStrategy when set, over spec.running", () => {
    assert.equal(capturedRunStrategy(definition({ runStrategy: "Manual", running: true })), "Manual");
    assert.equal(
      capturedRunStrategy(definition({ runStrategy: "RerunOnFailure", running: undefined })),
      "RerunOnFailure",
    );
  });

  it("is Always for running true, Halted for running false or absent", () => {
    assert.equal(capturedRunStrategy(definition({ running: true })), "Always");
    assert.equal(capturedRunStrategy(definition({ running: false })), "Halted");
    assert.equal(capturedRunStrategy(definition({ running: undefined })), "Halted");
  });
});

describe("recreatedObjects", () => {
  it("names the VirtualMachine after the target, keeping labels and adding annotations to the captured ones", () => {
    const { virtualMachine } = recreatedObjects(
      definition(),
      copyOptions({ target: { namespace: "qa", name: "db-9" } }),
    );
    assert.equal(virtualMachine.apiVersion, "kubevirt.io/v1");
    assert.equal(virtualMachine.kind, "VirtualMachine");
    assert.deepEqual(virtualMachine.metadata, {
      name: "db-9",
      namespace: "qa",
      labels: { app: "db" },
      annotations: { "team.example.com/owner": "alice", "fedbackup.io/restored-from": "vms/nightly: vms/db-0" },
    });
  });

  it("sets the run strategy and drops the deprecated running", () => {
    const { virtualMachine } = recreatedObjects(definition(), copyOptions({ runStrategy: "Manual" }));
    assert.equal(virtualMachine.spec.runStrategy, "Manual");
    assert.ok(!("running" in virtualMachine.spec));
  });

  it("renames claims, DataVolume volumes and templates, and marks templates pre-populated for CDI", () => {
    const { virtualMachine } = recreatedObjects(definition(), copyOptions());
    const spec = virtualMachine.spec;
    assert.equal(volume(spec, "root").dataVolume?.name, "db-0-copy-root");
    assert.equal(volume(spec, "data").persistentVolumeClaim?.claimName, "db-0-copy-shared-data");
    assert.equal(volume(spec, "import").dataVolume?.name, "db-0-copy-import");
    const template = vmSpec(spec).dataVolumeTemplates[0]!;
    assert.deepEqual(template.metadata, {
      name: "db-0-copy-root",
      annotations: {
        "team.example.com/tier": "gold",
        [ANNOTATION_CDI_PREPOPULATED]: "db-0-copy-root",
        [ANNOTATION_CDI_ALLOW_CLAIM_ADOPTION]: "true",
      },
    });
    assert.deepEqual(template.spec, { storage: { resources: { requests: { storage: "10Gi" } } } });
  });

  it("leaves names the map does not hold as they are", () => {
    const { virtualMachine } = recreatedObjects(definition(), copyOptions({ claimNames: new Map() }));
    assert.equal(volume(virtualMachine.spec, "data").persistentVolumeClaim?.claimName, "shared-data");
    assert.equal(vmSpec(virtualMachine.spec).dataVolumeTemplates[0]!.metadata.name, "db-0-root");
  });

  it("renames a hostDisk path that ends in a renamed file, and only that", () => {
    const renamed = recreatedObjects(definition(), copyOptions());
    assert.equal(volume(renamed.virtualMachine.spec, "scratch").hostDisk?.path, "/disks/vms/db-0-copy/disk0.img");
    const other = recreatedObjects(
      definition(),
      copyOptions({ renamedFiles: [{ from: "vms/db-1/disk0.img", to: "vms/db-1-copy/disk0.img" }] }),
    );
    assert.equal(volume(other.virtualMachine.spec, "scratch").hostDisk?.path, "/disks/vms/db-0/disk0.img");
    // Only at a path component: "s/db-0/disk0.img" is another file than "vms/db-0/disk0.img".
    const partial = recreatedObjects(
      definition(),
      copyOptions({ renamedFiles: [{ from: "s/db-0/disk0.img", to: "s/db-0-copy/disk0.img" }] }),
    );
    assert.equal(volume(partial.virtualMachine.spec, "scratch").hostDisk?.path, "/disks/vms/db-0/disk0.img");
  });

  it("creates the standalone DataVolumes renamed, in the target's namespace, pre-populated for CDI", () => {
    const { dataVolumes } = recreatedObjects(definition(), copyOptions({ target: { namespace: "qa", name: "db-9" } }));
    assert.deepEqual(dataVolumes, [
      {
        apiVersion: "cdi.kubevirt.io/v1beta1",
        kind: "DataVolume",
        metadata: {
          name: "db-0-copy-import",
          namespace: "qa",
          labels: { app: "db" },
          annotations: {
            keep: "me",
            [ANNOTATION_CDI_PREPOPULATED]: "db-0-copy-import",
            [ANNOTATION_CDI_ALLOW_CLAIM_ADOPTION]: "true",
          },
        },
        spec: { source: { http: { url: "https://images.example.com/db.qcow2" } }, storage: {} },
      },
    ]);
  });

  it("gives a copy new MAC addresses, firmware UUID and serial where the captured spec sets them", () => {
    const { virtualMachine } = recreatedObjects(definition(), copyOptions());
    const domain = podSpecOf(virtualMachine.spec).domain;
    const [first, second] = [domain.devices.interfaces[0]!, domain.devices.interfaces[1]!];
    assert.equal(first.macAddress, copyMacAddress(copy, "default"));
    assert.notEqual(first.macAddress, CAPTURED_MAC);
    assert.ok(!("macAddress" in second), "an interface without a MAC address gets none");
    assert.equal(domain.firmware.uuid, copyFirmwareUuid(copy));
    assert.equal(domain.firmware.serial, copySerial(copy));
  });

  it("adds no firmware UUID or serial the captured spec does not set", () => {
    const captured = definition();
    podSpecOf(captured.virtualMachine.spec).domain.firmware = { bootloader: { efi: {} } };
    const { virtualMachine } = recreatedObjects(captured, copyOptions());
    assert.deepEqual(podSpecOf(virtualMachine.spec).domain.firmware, { bootloader: { efi: {} } });
  });

  it("keeps the identity of a copy that asks to keep it, and of a VM restored under its own name", () => {
    for (const options of [copyOptions({ newIdentity: false }), copyOptions({ target: source, newIdentity: true })]) {
      const domain = podSpecOf(recreatedObjects(definition(), options).virtualMachine.spec).domain;
      assert.equal(domain.devices.interfaces[0]!.macAddress, CAPTURED_MAC);
      assert.equal(domain.firmware.uuid, CAPTURED_UUID);
      assert.equal(domain.firmware.serial, "SERIAL-0001");
    }
  });

  it("keeps the rest of the spec (node selector, other volumes) as captured", () => {
    const spec = recreatedObjects(definition(), copyOptions()).virtualMachine.spec;
    assert.deepEqual(podSpecOf(spec).nodeSelector, { "kubernetes.io/hostname": "node-a", disktype: "ssd" });
    assert.deepEqual(volume(spec, "cloudinit"), { name: "cloudinit", cloudInitNoCloud: { userData: "#cloud-config" } });
  });

  it("never changes the definition it is given, nor shares objects with it", () => {
    const captured = deepFreeze(definition());
    const before = JSON.stringify(captured);
    const objects = recreatedObjects(captured, copyOptions());
    assert.equal(JSON.stringify(captured), before);
    (objects.dataVolumes[0]!.spec.storage as Record<string, unknown>).size = "1Gi";
    podSpecOf(objects.virtualMachine.spec).nodeSelector.extra = "x";
    objects.virtualMachine.metadata.labels!.extra = "x";
    assert.equal(JSON.stringify(captured), before);
  });
});

describe("foreignDisksOf", () => {
  const claims = new Set(["db-0-root", "shared-data", "db-0-import"]);
  const files = ["vms/db-0/disk0.img"];
  const withVolumes = (...volumes: unknown[]) => {
    const d = definition();
    podSpecOf(d.virtualMachine.spec).volumes.push(...(volumes as Volume[]));
    return d;
  };

  it("finds none when the definition names only the captured claims and files", () => {
    assert.deepEqual(foreignDisksOf(definition(), claims, files, "/disks"), []);
    assert.deepEqual(foreignDisksOf(definition(), claims, files, "/disks/"), []);
  });

  it("flags a claim, a DataVolume and a DataVolume template not in the capture", () => {
    const d = withVolumes(
      { name: "x", persistentVolumeClaim: { claimName: "db-1-root" } },
      { name: "y", dataVolume: { name: "db-1-data" } },
    );
    vmSpec(d.virtualMachine.spec).dataVolumeTemplates.push({ metadata: { name: "db-1-tpl" }, spec: {} });
    assert.deepEqual(foreignDisksOf(d, claims, files, "/disks"), [
      'claim "db-1-root"',
      'claim "db-1-data"',
      'dataVolumeTemplate "db-1-tpl"',
    ]);
  });

  it("flags a hostDisk path not in the capture, outside the mount, or leaving it with '..'", () => {
    const d = withVolumes(
      { name: "a", hostDisk: { path: "/disks/vms/db-1/disk0.img" } },
      { name: "b", hostDisk: { path: "/elsewhere/vms/db-0/disk0.img" } },
      { name: "c", hostDisk: { path: "/disks/../vms/db-0/disk0.img" } },
      { name: "d", hostDisk: { path: "vms/db-0/disk0.img" } },
    );
    assert.deepEqual(foreignDisksOf(d, claims, files, "/disks"), [
      'hostDisk "/disks/vms/db-1/disk0.img"',
      'hostDisk "/elsewhere/vms/db-0/disk0.img"',
      'hostDisk "/disks/../vms/db-0/disk0.img"',
      'hostDisk "vms/db-0/disk0.img"',
    ]);
  });

  it("flags names and paths that are not strings", () => {
    const d = withVolumes(
      { name: "a", persistentVolumeClaim: { claimName: 42 } },
      { name: "b", dataVolume: { name: ["db-0-root"] } },
      { name: "c", hostDisk: { path: null } },
    );
    vmSpec(d.virtualMachine.spec).dataVolumeTemplates.push({ metadata: {}, spec: {} });
    assert.deepEqual(foreignDisksOf(d, claims, files, "/disks"), [
      "claim 42",
      'claim ["db-0-root"]',
      "hostDisk null",
      "dataVolumeTemplate undefined",
    ]);
  });

  // An ephemeral volume reads a claim through an overlay, a memoryDump volume writes one: both name a disk.
  it("flags a claim named by an ephemeral or a memoryDump volume", () => {
    const d = withVolumes(
      { name: "a", ephemeral: { persistentVolumeClaim: { claimName: "db-1-root" } } },
      { name: "b", memoryDump: { claimName: "db-1-data" } },
    );
    assert.equal(foreignDisksOf(d, claims, files, "/disks").length, 2);
  });

  // A standalone DataVolume adopts the claim of its name: it must be one the capture held.
  it("flags a standalone DataVolume of the definition that is not in the capture", () => {
    const d = definition();
    d.dataVolumes.push({
      apiVersion: "cdi.kubevirt.io/v1beta1",
      kind: "DataVolume",
      metadata: { name: "db-1-root", namespace: "vms" },
      spec: { storage: {} },
    });
    assert.deepEqual(foreignDisksOf(d, claims, files, "/disks").length, 1);
  });
});

describe("comparableSpec", () => {
  const spec = (over: Record<string, unknown> = {}, nodeSelector?: Record<string, string>) => ({
    template: { spec: { domain: { memory: { guest: "2Gi" } }, ...(nodeSelector ? { nodeSelector } : {}) } },
    ...over,
  });

  it("ignores runStrategy, running and the hostname node selector", () => {
    assert.deepEqual(
      comparableSpec(spec({ runStrategy: "Halted" }, { "kubernetes.io/hostname": "node-b" })),
      comparableSpec(spec({ running: true })),
    );
    assert.deepEqual(comparableSpec(spec({ runStrategy: "Always", running: false })), spec());
  });

  it("keeps every other node selector and any other difference", () => {
    assert.deepEqual(
      comparableSpec(spec({}, { "kubernetes.io/hostname": "node-a", disktype: "ssd" })),
      spec({}, { disktype: "ssd" }),
    );
    assert.notDeepEqual(comparableSpec(spec({}, { disktype: "ssd" })), comparableSpec(spec()));
    const bigger = spec();
    bigger.template.spec.domain.memory.guest = "4Gi";
    assert.notDeepEqual(comparableSpec(bigger), comparableSpec(spec()));
  });

  it("does not change its input, and takes a missing spec for an empty one", () => {
    const input = deepFreeze(spec({ runStrategy: "Always" }, { "kubernetes.io/hostname": "node-a" }));
    const before = JSON.stringify(input);
    comparableSpec(input);
    assert.equal(JSON.stringify(input), before);
    assert.deepEqual(comparableSpec(undefined), {});
  });
});
