// `fedbackup digest` after a real backup of VMs in both layouts: hostDisk files on the shared volume, and
// disks on claims (a PersistentVolumeClaim and a DataVolume in Filesystem mode, a Block-mode claim on a
// loop device), one VM mixing a hostDisk and a claim. Each is listed with its last backup like any VM,
// with its disks (volume modes from the claims, or from the last capture when claims cannot be listed),
// --disks keeps the VMs of one layout, and a VM that is gone (deleted: these VMs are VMIs without a
// VirtualMachine) shows the disks its capture recorded.
import assert from "node:assert/strict";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { runDigest } from "../../src/cli/digest.js";
import type { DigestDisk, DigestRow } from "../../src/digest/index.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { claimDisksOf, cleanupClaimDisks, createVm, type VmFixture } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { cluster } from "./setup.js";
import { asDigestViewer } from "./digest-viewer.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("fedbackup digest of VMs on hostDisks, claims and DataVolumes", function () {
  this.timeout(300_000);
  let env: BackupEnv | undefined;
  /** Every step of the backup, as the operator left them. */
  let steps: Array<NodeSnapshot & KubeObject> = [];

  const vms: VmFixture[] = [
    { name: "files", node: "node-a" },
    {
      name: "fs",
      node: "node-a",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 1 * MiB }],
    },
    {
      name: "dv",
      node: "node-b",
      claimDisks: [{ source: "dataVolume", volumeMode: "Filesystem", size: 512 * KiB }],
    },
    {
      name: "blk",
      node: "node-b",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Block", size: 2 * MiB, content: "mixed" }],
    },
    {
      name: "mixed",
      node: "node-c",
      disks: [128 * KiB],
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 256 * KiB }],
    },
  ];

  async function rows(...argv: string[]): Promise<DigestRow[]> {
    let out = "";
    let err = "";
    const code = await runDigest(
      ["--kubeconfig", cluster().kubeconfigPath, "-o", "json", ...argv],
      (s) => (out += s),
      (s) => (err += s),
    );
    assert.equal(code, 0, `fedbackup digest ${argv.join(" ")} exited ${code}: ${err}`);
    return JSON.parse(out) as DigestRow[];
  }

  before(async function () {
    // Block-mode claims are loop devices: root only (as claims-backup.test.ts).
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
    env = await backupEnv("digest-claims");
    const operator = await startOperator();
    try {
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      for (const vm of vms)
        for (const d of claimDisksOf(env.namespace, vm.name))
          await waitForBound(adminClient(), env.namespace, d.claimName);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "both", { snapshot: { method: "Copy" } }),
      );
      const fb = await backupFinished(env.namespace, "both", 240_000).catch(async (err: unknown) => {
        // Say where the backup stands, rather than only that it did not finish.
        const now = await adminClient().get(Resources.FederatedBackup, env!.namespace, "both");
        throw new Error(`${(err as Error).message}: ${JSON.stringify((now as { status?: unknown }).status)}`);
      });
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
    } finally {
      await operator.stop();
    }
    steps = (
      await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
        namespace: env.namespace,
        labelSelector: "fedbackup.io/backup=both",
      })
    ).items;
  });

  after(async () => {
    if (!env) return;
    const client = adminClient();
    for (const type of [Resources.FederatedBackup, Resources.NodeSnapshot]) {
      const { items } = await client.list(type, { namespace: env.namespace });
      await Promise.all(items.map((o) => client.delete(type, env!.namespace, o.metadata.name!)));
    }
    await cleanupClaimDisks(env.namespace);
    env.cleanup();
  });

  /** The step that captured a VM: its node and completion time are the VM's last backup. */
  function capturingStep(vm: string): NodeSnapshot & KubeObject {
    const found = steps.filter((s) => (s.status?.captured ?? []).some((c) => c.name === vm));
    assert.equal(found.length, 1, `one step captured ${vm}`);
    return found[0]!;
  }

  /** The disks a VM's row must show: its hostDisk volumes, then its claims with their volume mode. */
  function expectedDisks(vm: VmFixture): DigestDisk[] {
    const hostDisks = (vm.disks ?? (vm.claimDisks?.length ? [] : [0])).map((_, i): DigestDisk => ({
      volume: `disk${i}`,
      type: "hostDisk",
    }));
    const claims = claimDisksOf(env!.namespace, vm.name).map((d): DigestDisk => ({
      volume: d.volumeName,
      type: d.source,
      claim: d.claimName,
      volumeMode: d.volumeMode,
    }));
    return [...hostDisks, ...claims];
  }

  it("lists every VM, whatever its disks, with the step that captured it as its last backup, and its disks", async () => {
    const ns = env!.namespace;
    const got = await rows("-n", ns);
    assert.deepEqual(
      got.map((r) => r.name),
      ["blk", "dv", "files", "fs", "mixed"],
    );
    for (const row of got) {
      const step = capturingStep(row.name);
      // Whether the capture carries the VM's definition is digest-deleted.test.ts's to check.
      const { definition: _definition, ...lastBackup } = row.lastBackup!;
      assert.deepEqual(
        lastBackup,
        { backup: `${ns}/both`, at: step.status!.completionTime, node: step.spec.node, round: 1 },
        row.name,
      );
      assert.equal(row.backups, 1, row.name);
      assert.equal(row.phase, "Running", row.name);
      assert.deepEqual(row.disks, expectedDisks(vms.find((v) => v.name === row.name)!), row.name);
    }
    // The fixtures are what the test means: a DataVolume, a Block claim, a VM with both layouts.
    assert.deepEqual(
      got.map((r) => [r.name, r.disks.map((d) => `${d.type}${d.volumeMode ? ` ${d.volumeMode}` : ""}`)]),
      [
        ["blk", ["persistentVolumeClaim Block"]],
        ["dv", ["dataVolume Filesystem"]],
        ["files", ["hostDisk"]],
        ["fs", ["persistentVolumeClaim Filesystem"]],
        ["mixed", ["hostDisk", "persistentVolumeClaim Filesystem"]],
      ],
    );
  });

  it("keeps the VMs of one layout with --disks, and shows the layout in the table", async () => {
    const ns = env!.namespace;
    const names = async (kinds: string) => (await rows("-n", ns, "--disks", kinds)).map((r) => r.name);
    assert.deepEqual(await names("claim"), ["blk", "dv", "fs", "mixed"]);
    assert.deepEqual(await names("hostDisk"), ["files", "mixed"]);
    assert.deepEqual(await names("block"), ["blk"]);
    assert.deepEqual(await names("dataVolume"), ["dv"]);
    assert.deepEqual(await names("Filesystem"), ["dv", "fs", "mixed"]);

    let out = "";
    const code = await runDigest(
      ["--kubeconfig", cluster().kubeconfigPath, "-n", ns],
      (s) => (out += s),
      () => undefined,
    );
    assert.equal(code, 0);
    const table = out.trimEnd().split("\n");
    assert.match(table[0]!, /^NAMESPACE +NAME +NODE +PHASE +DISKS +LAST BACKUP +BACKUP +LAST RESTORE +FAILURES$/);
    const disksCell = new Map(
      table
        .slice(1)
        .map((l) => l.split(/ {3,}/))
        .map((cells) => [cells[1], cells[4]]),
    );
    assert.deepEqual(Object.fromEntries(disksCell), {
      blk: "claim (Block)",
      dv: "dataVolume (Filesystem)",
      files: "hostDisk",
      fs: "claim (Filesystem)",
      mixed: "hostDisk, claim (Filesystem)",
    });
  });

  it("takes the volume modes from the last capture for a user who may not list claims", async () => {
    const ns = env!.namespace;
    await asDigestViewer(ns, async (viewerConfig) => {
      // The viewer really cannot list the claims: the modes below can only come from the capture.
      const viewerClient = KubeClient.load(viewerConfig);
      try {
        await assert.rejects(viewerClient.list(Resources.PersistentVolumeClaim, { namespace: ns }), /forbidden/i);
      } finally {
        viewerClient.close();
      }
      let out = "";
      let err = "";
      const code = await runDigest(
        ["--kubeconfig", viewerConfig, "-n", ns, "-o", "json"],
        (s) => (out += s),
        (s) => (err += s),
      );
      assert.equal(code, 0, err);
      const viewer = (JSON.parse(out) as DigestRow[]).map((r) => [r.name, r.disks]);
      const admin = (await rows("-n", ns)).map((r) => [r.name, r.disks]);
      assert.deepEqual(viewer, admin);
    });
  });

  it("shows a VM that is gone with the disks its last capture recorded", async () => {
    const ns = env!.namespace;
    const client = adminClient();
    for (const name of ["blk", "mixed"]) await client.delete(Resources.VirtualMachineInstance, ns, name);
    await waitFor("the VMIs blk and mixed to be gone", 30_000, async () => {
      const { items } = await client.list(Resources.VirtualMachineInstance, { namespace: ns });
      return items.some((v) => ["blk", "mixed"].includes(v.metadata.name!)) ? undefined : true;
    });
    // Neither a VMI nor a VirtualMachine: deleted, listed with --deleted only.
    assert.deepEqual(
      (await rows("-n", ns)).map((r) => r.name),
      ["dv", "files", "fs"],
    );
    const got = new Map((await rows("-n", ns, "--deleted")).map((r) => [r.name, r]));
    assert.deepEqual([...got.keys()], ["blk", "mixed"]);
    const [blkDisk] = claimDisksOf(ns, "blk");
    const [mixedDisk] = claimDisksOf(ns, "mixed");
    assert.deepEqual(got.get("blk")!.disks, [
      { volume: "disk0", type: "persistentVolumeClaim", claim: blkDisk!.claimName, volumeMode: "Block" },
    ]);
    // Its hostDisk is a file on the shared volume, as the step recorded it.
    assert.deepEqual(got.get("mixed")!.disks, [
      { type: "file", file: `${ns}/mixed/disk0.img` },
      {
        volume: mixedDisk!.volumeName,
        type: "persistentVolumeClaim",
        claim: mixedDisk!.claimName,
        volumeMode: "Filesystem",
      },
    ]);
    assert.equal(got.get("blk")!.lastBackup?.backup, `${ns}/both`);
    assert.deepEqual(
      (await rows("-n", ns, "--deleted", "--disks", "block")).map((r) => [r.name, r.phase]),
      [["blk", "Deleted"]],
    );
  });
});
