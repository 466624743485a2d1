import assert from "node:assert/strict";
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../../../src/api/kubevirt.js";
import { nodeCache, vmiCache } from "../../../src/controllers/runtime/caches.js";
import { observeNode, observeWorkload } from "../../../src/controllers/runtime/observe.js";
import { SharedInformers } from "../../../src/controllers/runtime/shared-informers.js";
import {
  slimJob,
  slimNode,
  slimVm,
  slimVmi,
  withoutManagedFields,
} from "../../../src/controllers/runtime/slim-objects.js";
import { viewJob } from "../../../src/controllers/runtime/job-view.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { FakeCluster, until } from "./fake-cluster.js";

const managedFields = [
  { manager: "virt-controller", operation: "Update", fieldsV1: { "f:status": { "f:phase": {} } } },
];

const vmi = (): VirtualMachineInstance & KubeObject => ({
  apiVersion: "kubevirt.io/v1",
  kind: "VirtualMachineInstance",
  metadata: {
    name: "db",
    namespace: "team-a",
    uid: "u-1",
    labels: { "fedbackup.io/priority": "5" },
    annotations: { "fedbackup.io/extra-files": "/var/lib/vmdisks/db/nvram.fd" },
    ownerReferences: [{ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: "db", uid: "u-0" }],
    managedFields,
  },
  spec: {
    domain: { devices: { disks: [{ name: "root", disk: { bus: "virtio" } }] }, firmware: { uuid: "x" } },
    volumes: [{ name: "root", hostDisk: { path: "/var/lib/vmdisks/db/root.img", type: "Disk" } }],
    nodeSelector: { "kubernetes.io/hostname": "node-1" },
    networks: [{ name: "default", pod: {} }],
  },
  status: {
    phase: "Running",
    nodeName: "node-1",
    fsFreezeStatus: "frozen",
    migrationState: { targetNode: "node-2", completed: false },
    conditions: [{ type: "Ready", status: "True" }],
    interfaces: [{ ipAddress: "10.0.0.7" }],
    guestOSInfo: { id: "fedora" },
    volumeStatus: [{ name: "root", target: "vda" }],
  } as NonNullable<VirtualMachineInstance["status"]>,
});

const node = (): NodeObject & KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name: "node-1",
    resourceVersion: "3",
    labels: { "node-role.kubernetes.io/control-plane": "" },
    annotations: { "node.alpha.kubernetes.io/ttl": "0" },
    managedFields,
  },
  spec: {
    unschedulable: true,
    taints: [{ key: "k", effect: "NoSchedule" }],
    podCIDR: "10.0.1.0/24",
  } as NodeObject["spec"],
  status: {
    allocatable: { cpu: "4", memory: "8Gi" },
    conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-11-25T01:00:00Z" }],
    images: Array.from({ length: 50 }, (_, i) => ({ names: [`registry/image-${i}:latest`], sizeBytes: 1e8 })),
    nodeInfo: { kubeletVersion: "v1.37.2" },
  } as NodeObject["status"],
});

describe("slim cache objects", () => {
  it("keep what the planners read of a VMI, and drop its domain, guest details and managedFields", () => {
    const full = vmi();
    const before = structuredClone(full);
    const slim = slimVmi(full);
    assert.deepEqual(full, before, "the argument is left as it is");
    assert.deepEqual(observeWorkload(slim, "/var/lib/vmdisks"), observeWorkload(full, "/var/lib/vmdisks"));
    assert.deepEqual(Object.keys(slim.spec!).sort(), ["nodeSelector", "volumes"]);
    assert.deepEqual(Object.keys(slim.status!).sort(), [
      "conditions",
      "fsFreezeStatus",
      "migrationState",
      "nodeName",
      "phase",
    ]);
    assert.equal(slim.metadata.managedFields, undefined);
    assert.deepEqual(slim.metadata.annotations, full.metadata.annotations);
    assert.deepEqual(slim.metadata.ownerReferences, full.metadata.ownerReferences);
  });

  it("keep all of a VirtualMachine's metadata and spec (a restore replaces the spec sending them back)", () => {
    const vm: VirtualMachine & KubeObject = {
      metadata: { name: "db", namespace: "team-a", annotations: { a: "b" }, resourceVersion: "1", managedFields },
      spec: { runStrategy: "Always", template: { spec: { domain: { cpu: { cores: 2 } } } }, dataVolumeTemplates: [] },
      status: {
        printableStatus: "Running",
        ready: true,
        created: true,
        volumeSnapshotStatuses: [{ name: "root" }],
      } as VirtualMachine["status"],
    };
    const slim = slimVm(vm);
    assert.deepEqual(slim.spec, vm.spec);
    assert.deepEqual(slim.metadata, { name: "db", namespace: "team-a", annotations: { a: "b" }, resourceVersion: "1" });
    assert.deepEqual(slim.status, { printableStatus: "Running", ready: true, created: true });
  });

  it("keep what the planners read of a Node, and drop its images, annotations and managedFields", () => {
    const full = node();
    const slim = slimNode(full);
    assert.deepEqual(observeNode(slim), observeNode(full));
    assert.deepEqual(slim.spec, { unschedulable: true, taints: [{ key: "k", effect: "NoSchedule" }] });
    assert.deepEqual(Object.keys(slim.status!).sort(), ["allocatable", "conditions"]);
    assert.equal(slim.metadata.annotations, undefined);
    assert.ok(JSON.stringify(slim).length * 10 < JSON.stringify(full).length);
  });

  it("keep a Job's status and drop its pod template", () => {
    const job = {
      metadata: {
        name: "nightly-r1-node-1",
        namespace: "team-a",
        labels: { "fedbackup.io/backup": "nightly" },
        managedFields,
      },
      spec: { template: { spec: { containers: [{ name: "agent", image: "fedbackup:1" }] } } },
      status: { completionTime: "2026-11-25T01:00:09Z", conditions: [{ type: "Complete", status: "True" }] },
    };
    const slim = slimJob(job);
    assert.deepEqual(viewJob(slim), viewJob(job));
    assert.equal("spec" in slim, false);
    assert.deepEqual(slim.metadata.labels, job.metadata.labels);
  });

  it("leave an object without managedFields as it is", () => {
    const obj = { metadata: { name: "x" } };
    assert.equal(withoutManagedFields(obj), obj);
  });
});

describe("the shared caches", () => {
  it("keep no managedFields and slim VMIs and Nodes, from a list, a watch event or an object written and observed", async () => {
    const cluster = new FakeCluster().seed("virtualmachineinstances", vmi()).seed("nodes", node());
    const caches = new SharedInformers(cluster.client, { warn: () => {} });
    const vmis = vmiCache(caches);
    const nodes = nodeCache(caches);
    const leases = caches.informer<KubeObject>(Resources.Lease);
    await caches.start();
    try {
      const listed = vmis.get("team-a/db")!;
      assert.equal(listed.metadata.managedFields, undefined);
      assert.equal((listed.spec as Record<string, unknown>).domain, undefined);
      assert.equal(nodes.get("node-1")!.status?.allocatable?.cpu, "4");
      assert.equal((nodes.get("node-1")!.status as Record<string, unknown>).images, undefined);

      const changed = vmi();
      changed.status!.phase = "Succeeded";
      cluster.send("virtualmachineinstances", "MODIFIED", changed);
      await until(() => vmis.get("team-a/db")?.status?.phase === "Succeeded");
      assert.equal(vmis.get("team-a/db")!.metadata.managedFields, undefined);
      assert.equal((vmis.get("team-a/db")!.status as Record<string, unknown>).guestOSInfo, undefined);

      leases.observe({ metadata: { name: "l", namespace: "ops", resourceVersion: "9", managedFields } });
      assert.deepEqual(leases.get("ops/l")!.metadata, { name: "l", namespace: "ops", resourceVersion: "9" });
    } finally {
      await caches.stop();
    }
  });
});
