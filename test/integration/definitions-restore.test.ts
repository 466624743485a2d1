// Backups carry the VM itself: a VirtualMachine deleted (or its whole namespace) comes back from its backup,
// a copy is restored beside the running original, and definition Replace puts a changed spec back. Real
// control plane, real files and loop devices; the claims the restore creates are provisioned by the CSI
// double (as a CSI driver's external-provisioner would), their bytes compared in full.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import type { VirtualMachine, VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { deleteClaimAndVolume, ensureStorageClass, loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { CSI_DOUBLE_DRIVER } from "../harness/csi-double.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVirtualMachine,
  diskPaths,
  type ClaimDiskSpec,
  type VmFixture,
} from "../harness/workloads.js";
import { InstanceLog } from "./instance-log.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  creatorPoliciesSettled,
  csiDouble,
  grantOperatorSecretReads,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { describeResults, restoreAndWait, runningOn } from "./restore-runs.js";
import { freshNamespace } from "./setup.js";

type Vm = VirtualMachine & KubeObject;
type Vmi = VirtualMachineInstance & KubeObject;

const CLASS = "defs-csi";
const MiB = 1024 * 1024;
const onCsi = (volumeMode: "Filesystem" | "Block", source: ClaimDiskSpec["source"]): ClaimDiskSpec => ({
  source,
  volumeMode,
  size: MiB,
  storageClassName: CLASS,
  provisionedBy: CSI_DOUBLE_DRIVER,
});

/** New random bytes over a file or device, keeping its size. */
function overwrite(at: string): Buffer {
  const bytes = randomBytes(readFileSync(at).length);
  const fd = openSync(at, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** Where the bytes of a claim's disk are now: its PV's device (Block) or the disk.img in its directory. */
async function claimDiskPath(namespace: string, claim: string): Promise<string> {
  const pvName = await waitForBound(adminClient(), namespace, claim);
  const pv = await adminClient().get<KubeObject & { spec: { hostPath?: { path: string }; volumeMode?: string } }>(
    Resources.PersistentVolume,
    undefined,
    pvName,
  );
  const at = pv.spec.hostPath!.path;
  return pv.spec.volumeMode === "Block" ? at : path.join(at, "disk.img");
}

const getVm = (namespace: string, name: string) => adminClient().get<Vm>(Resources.VirtualMachine, namespace, name);
const getVmi = (namespace: string, name: string) =>
  adminClient().get<Vmi>(Resources.VirtualMachineInstance, namespace, name);

async function deleteVm(namespace: string, name: string): Promise<void> {
  await adminClient().delete(Resources.VirtualMachine, namespace, name);
  await adminClient()
    .delete(Resources.VirtualMachineInstance, namespace, name)
    .catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  await waitFor(`${namespace}/${name} gone`, 30_000, async () => {
    const gone = await Promise.all(
      [getVm(namespace, name), getVmi(namespace, name)].map((p) =>
        p.then(
          () => false,
          () => true,
        ),
      ),
    );
    return gone.every(Boolean) || undefined;
  });
}

/** Patches the VM's template spec (merge patch). */
const patchTemplate = (namespace: string, name: string, spec: Record<string, unknown>) =>
  adminClient().patch(Resources.VirtualMachine, namespace, name, { spec: { template: { spec } } });

async function backUp(env: BackupEnv, spec: Parameters<typeof backupManifest>[2] = {}): Promise<void> {
  await adminClient().create(
    Resources.FederatedBackup,
    backupManifest(env, "nightly", { snapshot: { method: "Copy" }, ...spec }),
  );
  const fb = await backupFinished(env.namespace, "nightly", 240_000).catch(async (err: unknown) => {
    const now = await adminClient().get<KubeObject & { status?: unknown }>(
      Resources.FederatedBackup,
      env.namespace,
      "nightly",
    );
    throw new Error(`${(err as Error).message}: ${JSON.stringify(now.status)}`, { cause: err });
  });
  assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
  // Every capture carries its VM's definition.
  const steps = await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
    namespace: env.namespace,
  });
  const captured = steps.items.flatMap((s) => s.status?.captured ?? []);
  assert.ok(captured.length > 0);
  for (const c of captured)
    assert.equal(c.definition, true, `${c.namespace}/${c.name} was captured without its definition`);
}

describe("Backups carry the VM: deleted VMs, a deleted namespace, copies, definition Replace", function () {
  this.timeout(600_000);
  let sim: SimulatedVmController;

  before(async function () {
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
    await csiDouble();
    // The class the claims are of: its provisioner is the CSI double, which provisions the claims a restore creates.
    await ensureStorageClass(adminClient(), CLASS, CSI_DOUBLE_DRIVER);
    sim = new SimulatedVmController(adminClient());
    await sim.start();
  });

  after(async () => {
    await sim?.stop();
    await cleanupClaimDisks();
  });

  it("brings back two deleted VMs (hostDisk, and claims with one claim deleted), leaving the other two untouched", async () => {
    const env = await backupEnv("defs-deleted");
    const ns = env.namespace;
    const vms: VmFixture[] = [
      { name: "host-a", node: "node-a" },
      { name: "host-b", node: "node-b" },
      {
        name: "claim-c",
        node: "node-a",
        claimDisks: [onCsi("Filesystem", "persistentVolumeClaim"), onCsi("Block", "dataVolume")],
      },
      { name: "claim-d", node: "node-b", claimDisks: [onCsi("Filesystem", "persistentVolumeClaim")] },
    ];
    const instances = new InstanceLog(ns);
    await instances.start();
    const operator = await startOperator();
    try {
      for (const vm of vms) await createVirtualMachine(adminClient(), ns, env.shared.hostDir, vm);
      for (const vm of vms)
        for (const d of claimDisksOf(ns, vm.name)) await waitForBound(adminClient(), ns, d.claimName);
      const hostFile = (vm: string) => path.join(env.shared.hostDir, diskPaths(ns, { name: vm })[0]!);
      const backedUp = new Map<string, Buffer>([
        ["host-a", readFileSync(hostFile("host-a"))],
        ...claimDisksOf(ns, "claim-c").map((d): [string, Buffer] => [d.claimName, readFileSync(d.path)]),
      ]);
      await backUp(env);

      // Two VMs deleted, and the first claim of claim-c with them; what is left of their disks changes.
      await deleteVm(ns, "host-a");
      await deleteVm(ns, "claim-c");
      const [lostClaim, keptClaim] = claimDisksOf(ns, "claim-c");
      // A finished pod that mounted a claim keeps it from going (kubernetes.io/pvc-protection): the backup Job's
      // pod is removed, as a Job's TTL would, so that the claim really goes.
      const pods = await adminClient().list<
        KubeObject & { spec?: { volumes?: Array<{ persistentVolumeClaim?: { claimName: string } }> } }
      >(Resources.Pod, { namespace: ns });
      for (const pod of pods.items) {
        if (pod.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === lostClaim!.claimName)) {
          await adminClient().delete(Resources.Pod, ns, pod.metadata.name!);
        }
      }
      await deleteClaimAndVolume(adminClient(), ns, lostClaim!.claimName, lostClaim!.pvName);
      await waitFor(`claim ${lostClaim!.claimName} gone`, 60_000, () =>
        adminClient()
          .get(Resources.PersistentVolumeClaim, ns, lostClaim!.claimName)
          .then(
            () => undefined,
            (err: unknown) => (isNotFound(err) ? true : undefined),
          ),
      );
      overwrite(hostFile("host-a"));
      overwrite(keptClaim!.path);
      // The two others keep running; what their disks hold now must still be there afterwards.
      const untouched = new Map<string, Buffer>([
        [hostFile("host-b"), overwrite(hostFile("host-b"))],
        ...claimDisksOf(ns, "claim-d").map((d): [string, Buffer] => [d.path, overwrite(d.path)]),
      ]);
      const others = await Promise.all(
        ["host-b", "claim-d"].map(async (name) => ({
          name,
          version: (await getVm(ns, name)).metadata.resourceVersion,
          vmi: (await getVmi(ns, name)).metadata.uid,
        })),
      );

      const r = await restoreAndWait(ns, "bring-back", {
        workloads: [
          { namespace: ns, name: "host-a" },
          { namespace: ns, name: "claim-c" },
        ],
      });
      assert.equal(r.status?.phase, "Completed", describeResults(r));
      assert.deepEqual(
        r.status?.plan?.map((e) => `${e.name} ${e.action} ${e.definition}`),
        ["claim-c RestoreThenStart Create", "host-a RestoreThenStart Create"],
      );
      assert.deepEqual(r.status?.results?.map((x) => `${x.name} ${x.phase} ${x.definition}`).sort(), [
        "claim-c Restored Created",
        "host-a Restored Created",
      ]);
      for (const [name, node] of [
        ["host-a", "node-a"],
        ["claim-c", "node-a"],
      ] as const) {
        const vm = await getVm(ns, name);
        assert.equal(vm.metadata.annotations?.["fedbackup.io/restore-hold"], undefined, `${name} still held`);
        assert.equal(vm.spec?.runStrategy, "Always");
        await runningOn(ns, name, node);
      }
      assert.ok(readFileSync(hostFile("host-a")).equals(backedUp.get("host-a")!), "host-a's disk is not the backup's");
      // The deleted claim was created again (provisioned anew), the kept one written in place.
      const recreated = await adminClient().get<KubeObject>(Resources.PersistentVolumeClaim, ns, lostClaim!.claimName);
      assert.equal(recreated.metadata.annotations?.["fedbackup.io/created-by-restore"], `${ns}/bring-back`);
      for (const d of [lostClaim!, keptClaim!]) {
        const bytes = readFileSync(await claimDiskPath(ns, d.claimName));
        assert.ok(bytes.subarray(0, MiB).equals(backedUp.get(d.claimName)!), `${d.claimName} is not the backup's`);
      }
      for (const [at, bytes] of untouched) assert.ok(readFileSync(at).equals(bytes), `${at} was written`);
      for (const o of others) {
        assert.equal((await getVm(ns, o.name)).metadata.resourceVersion, o.version, `${o.name} was changed`);
        assert.equal((await getVmi(ns, o.name)).metadata.uid, o.vmi, `${o.name} was restarted`);
      }
      instances.assertNeverTwo();
    } finally {
      await operator.stop();
      await instances.stop();
      await cleanupClaimDisks(ns);
      env.cleanup();
    }
  });

  it("restores every VM of a deleted namespace, re-created empty; a VM whose Secret is gone comes back halted", async () => {
    await creatorPoliciesSettled();
    const env = await backupEnv("defs-ns");
    const tenant = await freshNamespace("defs-tenant");
    const secret = (name: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace: tenant },
      stringData: { userdata: "#cloud-config\n" },
    });
    const cloudInit = (name: string) => ({
      name: "cloudinit",
      cloudInitNoCloud: { secretRef: { name: `${name}-cloudinit` } },
    });
    const vms: VmFixture[] = [
      { name: "web-1", node: "node-a" },
      { name: "web-2", node: "node-b" },
    ];
    // What the chart value restore.checkSecretReferences grants: the operator checks the Secrets a VM references.
    const revokeSecretReads = await grantOperatorSecretReads(`fedbackup-test-secrets-${env.namespace}`);
    const operator = await startOperator();
    try {
      for (const vm of vms) {
        await adminClient().create(Resources.Secret, secret(`${vm.name}-cloudinit`));
        await createVirtualMachine(adminClient(), tenant, env.shared.hostDir, vm);
        const spec = (await getVm(tenant, vm.name)).spec!.template!.spec!;
        await patchTemplate(tenant, vm.name, { volumes: [...(spec.volumes ?? []), cloudInit(vm.name)] });
      }
      const file = (vm: string) => path.join(env.shared.hostDir, diskPaths(tenant, { name: vm })[0]!);
      const backedUp = new Map(vms.map((vm) => [vm.name, readFileSync(file(vm.name))]));
      await backUp(env, { workloads: { namespaces: [tenant] } });

      await adminClient().delete(Resources.Namespace, undefined, tenant);
      await waitFor(`namespace ${tenant} gone`, 120_000, () =>
        adminClient()
          .get(Resources.Namespace, undefined, tenant)
          .then(
            () => undefined,
            (err: unknown) => (isNotFound(err) ? true : undefined),
          ),
      );
      // The files stay on the shared volume, but hold other bytes now.
      for (const vm of vms) overwrite(file(vm.name));
      await adminClient().create(Resources.Namespace, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: tenant },
      });
      // Only web-1's Secret is made again.
      await adminClient().create(Resources.Secret, secret("web-1-cloudinit"));

      const r = await restoreAndWait(env.namespace, "rebuild", {});
      assert.equal(r.status?.phase, "PartiallyFailed", describeResults(r));
      const results = new Map((r.status?.results ?? []).map((x) => [x.name, x]));
      assert.equal(results.get("web-1")?.phase, "Restored", describeResults(r));
      assert.equal(results.get("web-1")?.definition, "Created");
      assert.equal(results.get("web-2")?.phase, "Failed");
      assert.equal(results.get("web-2")?.reason, "MissingReferences");
      assert.match(results.get("web-2")?.message ?? "", /Secret web-2-cloudinit/);
      await runningOn(tenant, "web-1", "node-a");
      const halted = await getVm(tenant, "web-2");
      assert.equal(halted.spec?.runStrategy, "Halted");
      await assert.rejects(getVmi(tenant, "web-2"), (err: unknown) => isNotFound(err));
      for (const vm of vms) assert.ok(readFileSync(file(vm.name)).equals(backedUp.get(vm.name)!), `${vm.name}'s disk`);
      // Both came back with their definition: labels and the cloud-init volume.
      for (const vm of vms) {
        const back = await getVm(tenant, vm.name);
        assert.equal(back.metadata.labels?.app, "demo");
        assert.ok(back.spec?.template?.spec?.volumes?.some((v) => v.name === "cloudinit"));
      }
    } finally {
      await operator.stop();
      await revokeSecretReads();
      env.cleanup();
    }
  });

  it("restores db-0 as db-0-copy beside the running db-0: its own claim, MAC and firmware UUID; db-0 untouched", async () => {
    const env = await backupEnv("defs-copy");
    const ns = env.namespace;
    const operator = await startOperator();
    try {
      await createVirtualMachine(adminClient(), ns, env.shared.hostDir, {
        name: "db-0",
        node: "node-b",
        claimDisks: [onCsi("Filesystem", "persistentVolumeClaim")],
      });
      const [disk] = claimDisksOf(ns, "db-0");
      await waitForBound(adminClient(), ns, disk!.claimName);
      await patchTemplate(ns, "db-0", {
        domain: {
          devices: { interfaces: [{ name: "default", masquerade: {}, macAddress: "52:54:00:12:34:56" }] },
          firmware: { uuid: "5d307ca9-b3ef-428c-8861-06e72d69f223", serial: "db0-serial" },
        },
      });
      const backedUp = readFileSync(disk!.path);
      await backUp(env);
      const original = { vm: await getVm(ns, "db-0"), vmi: await getVmi(ns, "db-0") };

      const r = await restoreAndWait(ns, "copy", {
        workloads: [{ namespace: ns, name: "db-0", targetName: "db-0-copy" }],
      });
      assert.equal(r.status?.phase, "Completed", describeResults(r));
      assert.deepEqual(r.status?.plan?.[0]?.source, { namespace: ns, name: "db-0" });
      assert.equal(r.status?.results?.[0]?.definition, "Created");

      const copy = await getVm(ns, "db-0-copy");
      const domain = (vm: Vm) =>
        vm.spec?.template?.spec as {
          domain?: {
            devices?: { interfaces?: Array<{ macAddress?: string }> };
            firmware?: { uuid?: string; serial?: string };
          };
          volumes?: Array<{ persistentVolumeClaim?: { claimName: string } }>;
        };
      const mac = domain(copy).domain?.devices?.interfaces?.[0]?.macAddress;
      assert.ok(mac && mac !== "52:54:00:12:34:56", `the copy's MAC is ${mac}`);
      assert.ok(domain(copy).domain?.firmware?.uuid !== "5d307ca9-b3ef-428c-8861-06e72d69f223");
      assert.ok(domain(copy).domain?.firmware?.serial !== "db0-serial");
      const copyClaim = domain(copy).volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
      assert.equal(copyClaim, `db-0-copy${disk!.claimName.slice("db-0".length)}`);
      assert.ok(
        readFileSync(await claimDiskPath(ns, copyClaim))
          .subarray(0, MiB)
          .equals(backedUp),
        "the copy's disk",
      );
      await runningOn(ns, "db-0-copy", "node-b");
      await runningOn(ns, "db-0", "node-b");
      // The original: the same object, the same instance, the same bytes.
      assert.equal((await getVm(ns, "db-0")).metadata.resourceVersion, original.vm.metadata.resourceVersion);
      assert.equal((await getVmi(ns, "db-0")).metadata.uid, original.vmi.metadata.uid);
      assert.ok(readFileSync(disk!.path).equals(backedUp), "db-0's disk was written");
    } finally {
      await operator.stop();
      await cleanupClaimDisks(ns);
      env.cleanup();
    }
  });

  it("definition Replace puts back the captured spec after a change; the default keeps the change", async () => {
    const env = await backupEnv("defs-replace");
    const ns = env.namespace;
    const operator = await startOperator();
    try {
      await createVirtualMachine(adminClient(), ns, env.shared.hostDir, { name: "app-1", node: "node-a" });
      await backUp(env);
      await patchTemplate(ns, "app-1", { terminationGracePeriodSeconds: 7 });
      const grace = async () =>
        ((await getVm(ns, "app-1")).spec?.template?.spec as { terminationGracePeriodSeconds?: number })
          .terminationGracePeriodSeconds;

      const keep = await restoreAndWait(ns, "keep", { workloads: [{ namespace: ns, name: "app-1" }] });
      assert.equal(keep.status?.phase, "Completed", describeResults(keep));
      assert.equal(keep.status?.plan?.[0]?.definition, "Keep");
      assert.equal(keep.status?.results?.[0]?.definition, "Kept");
      assert.equal(await grace(), 7);
      await runningOn(ns, "app-1", "node-a");

      const replace = await restoreAndWait(ns, "replace", {
        definition: "Replace",
        workloads: [{ namespace: ns, name: "app-1" }],
      });
      assert.equal(replace.status?.phase, "Completed", describeResults(replace));
      assert.equal(replace.status?.plan?.[0]?.definition, "Replace");
      assert.equal(replace.status?.results?.[0]?.definition, "Replaced");
      assert.equal(await grace(), undefined);
      await runningOn(ns, "app-1", "node-a");
      const vm = await getVm(ns, "app-1");
      assert.equal(vm.metadata.annotations?.["fedbackup.io/restore-hold"], undefined);
      assert.equal(vm.spec?.runStrategy, "Always");
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });
});
