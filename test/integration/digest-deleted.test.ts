// `fedbackup digest --deleted` after a real backup: of five VirtualMachines backed up, two are deleted (the
// VirtualMachine and its VMI), one is stopped, one is deleted and created again under its name, one is left
// alone. --deleted lists exactly the two deleted ones, with their last capture (the backup, the capturing
// step's time and node, whether it carries the VM's definition); the default digest does not list them.
import assert from "node:assert/strict";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { runDigest } from "../../src/cli/digest.js";
import type { DigestRow } from "../../src/digest/index.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, diskPaths, type VmFixture } from "../harness/workloads.js";
import { asDigestViewer } from "./digest-viewer.js";
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

describe("fedbackup digest --deleted: VMs that exist only in backups", function () {
  this.timeout(300_000);
  let env: BackupEnv | undefined;
  let sim: SimulatedVmController | undefined;
  /** The backup's steps, as the operator left them. */
  let steps: Array<NodeSnapshot & KubeObject> = [];

  const vms: VmFixture[] = [
    { name: "web", node: "node-a", labels: { tier: "web" } },
    { name: "db", node: "node-a", labels: { tier: "db" } },
    { name: "cache", node: "node-b", labels: { tier: "db" }, disks: [64 * 1024, 32 * 1024] },
    { name: "stopped", node: "node-b" },
    { name: "again", node: "node-a" },
  ];
  const deleted = ["cache", "db"];

  async function run(argv: string[], kubeconfig = cluster().kubeconfigPath) {
    let out = "";
    let err = "";
    const code = await runDigest(
      ["--kubeconfig", kubeconfig, ...argv],
      (s) => (out += s),
      (s) => (err += s),
    );
    return { code, out, err };
  }

  async function rows(...argv: string[]): Promise<DigestRow[]> {
    const { code, out, err } = await run(["-o", "json", ...argv]);
    assert.equal(code, 0, `fedbackup digest ${argv.join(" ")} exited ${code}: ${err}`);
    return JSON.parse(out) as DigestRow[];
  }

  const names = async (...argv: string[]): Promise<string[]> => (await rows(...argv)).map((r) => r.name);

  /** Deletes a VirtualMachine and its VMI (as KubeVirt would; the simulated controller only stops VMs). */
  async function deleteVm(ns: string, name: string): Promise<void> {
    const client = adminClient();
    await client.delete(Resources.VirtualMachine, ns, name);
    await client.delete(Resources.VirtualMachineInstance, ns, name).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await waitFor(`VirtualMachine ${ns}/${name} and its VMI to be gone`, 30_000, async () => {
      for (const type of [Resources.VirtualMachine, Resources.VirtualMachineInstance]) {
        const gone = await client.get(type, ns, name).then(
          () => false,
          (err: unknown) => {
            if (isNotFound(err)) return true;
            throw err;
          },
        );
        if (!gone) return undefined;
      }
      return true;
    });
  }

  before(async function () {
    await kubevirtDouble();
    await podRunner();
    env = await backupEnv("digest-deleted");
    const ns = env.namespace;
    sim = new SimulatedVmController(adminClient());
    await sim.start();
    const operator = await startOperator();
    try {
      for (const vm of vms) await createVirtualMachine(adminClient(), ns, env.shared.hostDir, vm);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "nightly", { snapshot: { method: "Copy" } }),
      );
      const fb = await backupFinished(ns, "nightly", 240_000);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
    } finally {
      await operator.stop();
    }
    steps = (
      await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
        namespace: ns,
        labelSelector: "fedbackup.io/backup=nightly",
      })
    ).items;

    for (const name of deleted) await deleteVm(ns, name);
    // Stopped: the VirtualMachine stays, its VMI goes (the simulated controller deletes it).
    await adminClient().patch(Resources.VirtualMachine, ns, "stopped", { spec: { runStrategy: "Halted" } });
    await waitFor("the VMI of stopped to be gone", 30_000, async () =>
      (await adminClient().list(Resources.VirtualMachineInstance, { namespace: ns })).items.some(
        (v) => v.metadata.name === "stopped",
      )
        ? undefined
        : true,
    );
    // Deleted and created again under its name, halted: it exists.
    await deleteVm(ns, "again");
    await createVirtualMachine(adminClient(), ns, env.shared.hostDir, { name: "again", running: false });
  });

  after(async () => {
    await sim?.stop();
    if (!env) return;
    // Operators that later test files start watch every namespace: leave them no backups to adopt.
    const client = adminClient();
    for (const type of [Resources.FederatedBackup, Resources.NodeSnapshot]) {
      const { items } = await client.list(type, { namespace: env.namespace });
      await Promise.all(items.map((o) => client.delete(type, env!.namespace, o.metadata.name!)));
    }
    env.cleanup();
  });

  /** The step that captured a VM, and its captured[] entry: the VM's last capture. */
  function capture(vm: string): { step: NodeSnapshot & KubeObject; definition: unknown } {
    for (const step of steps) {
      const entry = step.status?.captured?.find((c) => c.name === vm);
      if (entry) return { step, definition: (entry as { definition?: unknown }).definition };
    }
    throw new Error(`no step captured ${vm}`);
  }

  it("lists exactly the deleted VMs with their last capture's backup, time and node", async () => {
    const ns = env!.namespace;
    const got = await rows("-n", ns, "--deleted");
    assert.deepEqual(
      got.map((r) => r.name),
      deleted,
    );
    for (const row of got) {
      const { step, definition } = capture(row.name);
      assert.equal(definition, true, `${row.name}'s capture carries its definition`);
      assert.ok(step.status?.completionTime, `${step.metadata.name} has a completion time`);
      assert.deepEqual(
        row.lastBackup,
        {
          backup: `${ns}/nightly`,
          at: step.status.completionTime,
          node: step.spec.node,
          round: 1,
          // Every capture of a VirtualMachine carries its definition: a restore can create it again.
          definition: true,
        },
        row.name,
      );
      assert.equal(row.phase, "Deleted", row.name);
      assert.equal(row.backups, 1, row.name);
      assert.deepEqual(row.labels, {}, row.name);
      assert.ok(!("node" in row), `${row.name} runs nowhere`);
      // Its disks as the capture recorded them: its files on the shared volume.
      assert.deepEqual(
        row.disks,
        diskPaths(
          ns,
          vms.find((v) => v.name === row.name)!,
        ).map((file) => ({ type: "file", file })),
        row.name,
      );
    }
  });

  it("does not list them without --deleted; a stopped or re-created VM is not deleted", async () => {
    const ns = env!.namespace;
    const got = await rows("-n", ns);
    assert.deepEqual(
      got.map((r) => [r.name, r.phase]),
      [
        ["again", "Missing"],
        ["stopped", "Missing"],
        ["web", "Running"],
      ],
    );
    assert.deepEqual(await names("-n", ns, "--phase", "Deleted"), []);
  });

  it("combines --deleted with the other filters", async () => {
    const ns = env!.namespace;
    assert.deepEqual(await names("-n", ns, "--deleted", "--disks", "hostDisk"), deleted);
    assert.deepEqual(await names("-n", ns, "--deleted", "--disks", "claim"), []);
    assert.deepEqual(await names("-n", ns, "--deleted", "--backed-up-since", "1h"), deleted);
    assert.deepEqual(await names("-n", ns, "--deleted", "--backed-up-before", "1h"), []);
    assert.deepEqual(await names("-n", ns, "--deleted", "--never-backed-up"), []);
    // Deleted VMs have no labels and run nowhere.
    assert.deepEqual(await names("-n", ns, "--deleted", "-l", "tier=db"), []);
    assert.deepEqual(await names("-n", ns, "--deleted", "-l", "!tier"), deleted);
    assert.deepEqual(await names("-n", ns, "--deleted", "--node", "node-a"), []);
    const everywhere = await rows("-A", "--deleted");
    assert.deepEqual(
      everywhere.filter((r) => r.namespace === ns).map((r) => r.name),
      deleted,
    );
    assert.ok(everywhere.every((r) => r.phase === "Deleted"));
  });

  it("prints a table of deleted VMs with the capture's node and whether it carries the definition", async () => {
    const ns = env!.namespace;
    const { code, out } = await run(["-n", ns, "--deleted"]);
    assert.equal(code, 0);
    const table = out.trimEnd().split("\n");
    assert.match(table[0]!, /^NAMESPACE +NAME +DISKS +LAST BACKUP +BACKUP +CAPTURED ON +DEFINITION +LAST RESTORE$/);
    assert.equal(table.length, 1 + deleted.length);
    for (const line of table.slice(1)) {
      const cells = line.split(/ {3,}/);
      const { step, definition } = capture(cells[1]!);
      assert.deepEqual(cells.slice(0, 2), [ns, cells[1]]);
      assert.match(cells[3]!, /^\d+[smh] ago$/);
      assert.equal(definition, true);
      assert.deepEqual(cells.slice(4), ["nightly", step.spec.node, "yes", "-"]);
    }
    const none = await run(["-n", ns, "--deleted", "--node", "node-a"]);
    assert.deepEqual(none, { code: 0, out: "", err: `No deleted VMs found in namespace ${ns}.\n` });
  });

  it("needs the right to list VirtualMachines: without it, deleted VMs cannot be told from stopped ones", async () => {
    const ns = env!.namespace;
    await asDigestViewer(ns, async (viewerConfig) => {
      const denied = await run(["-n", ns, "--deleted"], viewerConfig);
      assert.equal(denied.code, 1);
      assert.equal(denied.out, "");
      assert.match(denied.err, /^fedbackup digest: --deleted needs the right to list VirtualMachines/);
      // The viewer's digest still lists every VM without a VMI, as Missing.
      const { code, out, err } = await run(["-n", ns, "-o", "json"], viewerConfig);
      assert.equal(code, 0, err);
      assert.deepEqual(
        (JSON.parse(out) as DigestRow[]).map((r) => [r.name, r.phase]),
        [
          ["again", "Missing"],
          ["cache", "Missing"],
          ["db", "Missing"],
          ["stopped", "Missing"],
          ["web", "Running"],
        ],
      );
    });
  });
});
