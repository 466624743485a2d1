// The simulated KubeVirt VM controller (test/harness/kubevirt-vms.ts) against the real control plane:
// tests that build on it need it to start, stop and migrate VMIs the way KubeVirt does.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { NODE_NAME_LABEL, SimulatedVmController, type VirtualMachine } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, createVm } from "../harness/workloads.js";
import { adminClient, waitFor } from "./operator-env.js";
import { freshNamespace } from "./setup.js";

type Vmi = VirtualMachineInstance & KubeObject;
type Migration = KubeObject & { status?: { phase?: string } };

describe("simulated KubeVirt VM controller", function () {
  let ns: string;
  let sharedDir: string;
  let sim: SimulatedVmController;

  const client = () => adminClient();
  const getVm = () => client().get<VirtualMachine>(Resources.VirtualMachine, ns, "vm1");
  const vmis = async () => (await client().list<Vmi>(Resources.VirtualMachineInstance, { namespace: ns })).items;
  const vmiOf = async (name: string): Promise<Vmi | undefined> =>
    client()
      .get<Vmi>(Resources.VirtualMachineInstance, ns, name)
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
  const events = () => sim.history(ns, "vm1").map((e) => `${e.event}${e.from ? ` ${e.from} ->` : ""} ${e.node ?? "-"}`);

  async function migrate(name: string, node: string): Promise<Migration> {
    await client().create(Resources.VirtualMachineInstanceMigration, {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachineInstanceMigration",
      metadata: { name, namespace: ns },
      spec: { vmiName: "vm1", addedNodeSelector: { "kubernetes.io/hostname": node } },
    } as KubeObject);
    return waitFor(`migration ${name} to end`, 10_000, async () => {
      const m = await client().get<Migration>(Resources.VirtualMachineInstanceMigration, ns, name);
      return m.status?.phase === "Succeeded" || m.status?.phase === "Failed" ? m : undefined;
    });
  }

  before(async () => {
    ns = await freshNamespace("kubevirt-vms");
    sharedDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-kubevirt-vms-"));
    sim = new SimulatedVmController(client(), { failMigrationsTo: new Set(["node-b"]) });
    await sim.start();
  });

  after(async () => {
    await sim?.stop();
    if (sharedDir) rmSync(sharedDir, { recursive: true, force: true });
  });

  it("keeps the one VMI of a VM created running on node-b, and reports it Running", async () => {
    const vm = await createVirtualMachine(client(), ns, sharedDir, { name: "vm1", node: "node-b", running: true });
    await waitFor("vm1 Running", 10_000, async () =>
      (await getVm()).status?.printableStatus === "Running" ? 1 : undefined,
    );
    const [vmi, ...more] = await vmis();
    assert.equal(more.length, 0);
    assert.equal(vmi?.status?.nodeName, "node-b");
    assert.equal(vmi?.metadata.labels?.[NODE_NAME_LABEL], "node-b");
    assert.deepEqual(vmi?.metadata.ownerReferences?.[0], {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachine",
      name: "vm1",
      uid: vm.metadata.uid,
      controller: true,
    });
    assert.deepEqual((await getVm()).status, { printableStatus: "Running", ready: true, created: true });
    assert.deepEqual(events(), []);
  });

  it("deletes the VMI when the VM is Halted", async () => {
    await client().patch(Resources.VirtualMachine, ns, "vm1", { spec: { runStrategy: "Halted" } });
    await waitFor("vm1 Stopped", 10_000, async () =>
      (await getVm()).status?.printableStatus === "Stopped" ? 1 : undefined,
    );
    assert.equal(await vmiOf("vm1"), undefined);
    assert.deepEqual((await getVm()).status, { printableStatus: "Stopped", ready: false, created: false });
    assert.deepEqual(events(), ["Stopped node-b"]);
  });

  it("starts the VMI on the node the template's nodeSelector names", async () => {
    await client().patch(Resources.VirtualMachine, ns, "vm1", {
      spec: { runStrategy: "Always", template: { spec: { nodeSelector: { "kubernetes.io/hostname": "node-c" } } } },
    });
    const vmi = await waitFor("vm1's VMI", 10_000, () => vmiOf("vm1"));
    assert.equal(vmi.status?.phase, "Running");
    assert.equal(vmi.status?.nodeName, "node-c");
    assert.equal(vmi.metadata.labels?.[NODE_NAME_LABEL], "node-c");
    assert.equal(vmi.metadata.labels?.app, "demo");
    assert.equal(vmi.spec?.volumes?.[0]?.hostDisk?.shared, true);
    await waitFor("vm1 Running", 10_000, async () => ((await getVm()).status?.ready ? 1 : undefined));
    assert.deepEqual(events(), ["Stopped node-b", "Started node-c"]);
  });

  it("live-migrates the same VMI to the node a migration selects", async () => {
    const before = (await vmiOf("vm1"))!;
    const m = await migrate("to-a", "node-a");
    assert.equal(m.status?.phase, "Succeeded");
    const [vmi, ...more] = await vmis();
    assert.equal(more.length, 0);
    assert.equal(vmi?.metadata.uid, before.metadata.uid);
    assert.equal(vmi?.status?.nodeName, "node-a");
    assert.deepEqual(vmi?.metadata.labels, { app: "demo", [NODE_NAME_LABEL]: "node-a" });
    const state = vmi?.status?.migrationState as Record<string, unknown>;
    assert.deepEqual(
      [state.sourceNode, state.targetNode, state.completed, state.failed, state.migrationUid],
      ["node-c", "node-a", true, false, m.metadata.uid],
    );
    assert.ok(state.endTimestamp);
    assert.deepEqual(events().slice(-1), ["Migrated node-c -> node-a"]);
  });

  it("fails a migration to a node in failMigrationsTo and leaves the VMI where it is", async () => {
    const before = (await vmiOf("vm1"))!;
    assert.equal((await migrate("to-b", "node-b")).status?.phase, "Failed");
    const after = (await vmiOf("vm1"))!;
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(after.status?.nodeName, "node-a");
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.deepEqual(events().slice(-1), ["MigrationFailed node-a -> node-b"]);
  });

  it("recreates the VMI of a running VM when it is deleted", async () => {
    const old = (await vmiOf("vm1"))!;
    await client().delete(Resources.VirtualMachineInstance, ns, "vm1");
    const vmi = await waitFor("a new VMI for vm1", 10_000, async () => {
      const v = await vmiOf("vm1");
      return v && v.metadata.uid !== old.metadata.uid ? v : undefined;
    });
    // The template still pins node-c.
    assert.equal(vmi.status?.nodeName, "node-c");
    assert.deepEqual(events().slice(-2), ["Stopped node-a", "Started node-c"]);
  });

  it("leaves a VMI without a VirtualMachine alone", async () => {
    const bare = await createVm(client(), ns, sharedDir, { name: "bare", node: "node-b" });
    const halted = await createVirtualMachine(client(), ns, sharedDir, { name: "halted", running: false });
    await waitFor("halted Stopped", 10_000, async () =>
      (await client().get<VirtualMachine>(Resources.VirtualMachine, ns, halted.metadata.name!)).status
        ?.printableStatus === "Stopped"
        ? 1
        : undefined,
    );
    await sleep(500);
    await sim.waitIdle();
    assert.equal((await vmiOf("bare"))?.metadata.resourceVersion, bare.metadata.resourceVersion);
    assert.equal(await vmiOf("halted"), undefined);
    assert.deepEqual(sim.history(ns, "bare"), []);
    assert.ok(sim.calls > 0);
  });
});
