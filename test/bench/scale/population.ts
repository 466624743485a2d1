// The scale benchmark's cluster contents: N kwok nodes, the VMIs spread over them (spread.ts) in a few
// namespaces, the shared volume and the backup location as hostPath volumes, all created in parallel with a
// bound. VMIs are bare (no VirtualMachine), Running on their node, with one hostDisk on the shared volume.
import { setTimeout as sleep } from "node:timers/promises";
import { CREATOR_POLICY_GRACE_MS, CREATOR_POLICY_NAME } from "../../../src/controllers/runtime/creator-access.js";
import { AccessResources } from "../../../src/k8s/access-review.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { KWOK_NODE_ANNOTATION } from "../../harness/control-plane.js";
import { NODE_NAME_LABEL } from "../../harness/kubevirt-vms.js";
import { NODE_MOUNT_PATH } from "../../harness/workloads.js";

export const vmNamespace = (i: number): string => `scale-vms-${String(i).padStart(2, "0")}`;
export const nodeName = (i: number): string => `node-${String(i).padStart(4, "0")}`;
export const vmName = (i: number): string => `vm-${String(i).padStart(5, "0")}`;

export interface PlacedVm {
  namespace: string;
  name: string;
  node: string;
}

/** Runs `task` for every item, `limit` at a time. */
export async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Simulated nodes as the harness's ControlPlane.createNodes makes them, `concurrency` at a time; resolves once all are Ready. */
export async function createNodes(client: KubeClient, names: readonly string[], concurrency = 16): Promise<void> {
  const capacity = { cpu: "32", memory: "128Gi", pods: "110" };
  await pool(names, concurrency, (name) =>
    client.create(Resources.Node, {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          type: "kwok",
        },
        annotations: { [KWOK_NODE_ANNOTATION]: "fake" },
      },
      status: { capacity, allocatable: capacity },
    } as KubeObject),
  );
  const wanted = new Set(names);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const nodes = await client.list<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(
      Resources.Node,
    );
    const ready = nodes.items.filter(
      (n) =>
        wanted.has(n.metadata.name!) && n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    ).length;
    if (ready === wanted.size) return;
    if (Date.now() > deadline) throw new Error(`only ${ready} of ${wanted.size} nodes became Ready`);
    await sleep(1_000);
  }
}

export async function createNamespace(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await client.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
}

/** Bare VMIs, Running on their nodes, each with one hostDisk under the shared volume's mount path. */
export async function createVmis(client: KubeClient, vms: readonly PlacedVm[], concurrency = 32): Promise<void> {
  await pool(vms, concurrency, (vm) =>
    client.create(Resources.VirtualMachineInstance, {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachineInstance",
      metadata: { namespace: vm.namespace, name: vm.name, labels: { app: "scale", [NODE_NAME_LABEL]: vm.node } },
      spec: {
        domain: { devices: { disks: [{ name: "disk0", disk: { bus: "virtio" } }] } },
        volumes: [
          {
            name: "disk0",
            hostDisk: { path: `${NODE_MOUNT_PATH}/${vm.namespace}/${vm.name}/disk0.img`, type: "Disk", shared: true },
          },
        ],
      },
      status: { phase: "Running", nodeName: vm.node },
    } as KubeObject),
  );
}

/** Where each VM goes: `counts[i]` VMs on node i, numbered in node order, in `namespaces` namespaces in turn. */
export function placeVms(counts: readonly number[], namespaces: number): PlacedVm[] {
  const out: PlacedVm[] = [];
  counts.forEach((count, node) => {
    for (let k = 0; k < count; k++) {
      const i = out.length;
      out.push({ namespace: vmNamespace(i % namespaces), name: vmName(i), node: nodeName(node) });
    }
  });
  return out;
}

/**
 * Waits until the creator policies (installed with the CRDs) are older than the operator's grace period, so
 * that a backup selecting other namespaces has a creator the operator trusts.
 */
export async function creatorPoliciesSettled(client: KubeClient): Promise<void> {
  let newest = 0;
  for (const type of [
    AccessResources.MutatingAdmissionPolicy,
    AccessResources.MutatingAdmissionPolicyBinding,
    AccessResources.ValidatingAdmissionPolicy,
    AccessResources.ValidatingAdmissionPolicyBinding,
  ]) {
    const policy = await client.get(type, undefined, CREATOR_POLICY_NAME);
    newest = Math.max(newest, Date.parse(policy.metadata.creationTimestamp ?? ""));
  }
  const wait = newest + CREATOR_POLICY_GRACE_MS + 1_000 - Date.now();
  if (wait > 0) await sleep(wait);
}
