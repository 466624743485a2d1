// `fedbackup digest` against the real control plane: VMIs, hand-made FederatedBackups, NodeSnapshots and
// a WorkloadRestore with their statuses, read back through the CLI's own entry point (in-process).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import type { FederatedBackup, NodeSnapshot, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { runDigest } from "../../src/cli/digest.js";
import type { DigestRow } from "../../src/digest/index.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { createVirtualMachine, createVm, NODE_MOUNT_PATH } from "../harness/workloads.js";
import { adminClient } from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";
import { asDigestViewer } from "./digest-viewer.js";

/** An RFC 3339 timestamp `ms` before now, to the second. */
const ago = (ms: number): string => new Date(Date.now() - ms).toISOString().replace(/\.\d+Z$/, "Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Creates an object, then sets its status through the status subresource. */
async function createWithStatus<T extends KubeObject & { status?: unknown }>(
  type: ResourceType,
  obj: T,
): Promise<void> {
  const { status, ...rest } = obj;
  await adminClient().create(type, rest as T);
  if (status) {
    await adminClient().patch(type, obj.metadata.namespace, obj.metadata.name!, { status }, { subresource: "status" });
  }
}

function backupObject(namespace: string, name: string, completionTime: string): FederatedBackup & KubeObject {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { namespace, name },
    spec: {
      sharedVolume: { claimName: "vmdisks", nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: "backups" } },
    },
    status: { phase: "Completed", startTime: completionTime, completionTime },
  };
}

interface StepFields {
  backup: string;
  node: string;
  round?: number;
  phase: "Succeeded" | "Failed";
  completionTime: string;
  captured?: Array<[string, string]>;
  failed?: Array<[string, string, string]>;
  /** Leave out app.kubernetes.io/managed-by=fedbackup (not one of the operator's steps). */
  unmanaged?: boolean;
}

function stepObject(namespace: string, name: string, f: StepFields): NodeSnapshot & KubeObject {
  const round = f.round ?? 1;
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "NodeSnapshot",
    metadata: {
      namespace,
      name,
      labels: {
        ...(f.unmanaged ? {} : { "app.kubernetes.io/managed-by": "fedbackup" }),
        "fedbackup.io/backup": f.backup,
        "fedbackup.io/round": String(round),
      },
    },
    spec: {
      backupName: f.backup,
      backupUID: `uid-${f.backup}`,
      node: f.node,
      round,
      order: 1,
      sharedVolume: { claimName: "vmdisks", nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: "backups" }, path: f.backup },
      snapshot: { method: "Copy", quiesce: "None", freezeTimeout: "30s", maxFreeze: "2m" },
      extractAt: "Backup",
      workloads: [...(f.captured ?? []), ...(f.failed ?? [])].map(([ns, vm]) => ({
        namespace: ns,
        name: vm,
        files: [`${ns}/${vm}/disk0.img`],
      })),
    },
    status: {
      phase: f.phase,
      startTime: f.completionTime,
      completionTime: f.completionTime,
      captured: (f.captured ?? []).map(([ns, vm]) => ({ namespace: ns, name: vm, bytes: 65536, files: 1 })),
      failed: (f.failed ?? []).map(([ns, vm, reason]) => ({ namespace: ns, name: vm, reason })),
    },
  };
}

describe("fedbackup digest", function () {
  let ns: string;
  let other: string;
  let sharedDir: string;
  let kubeconfig: string;
  /** Nodes no other test uses (they need not exist: a VMI only names its node). */
  let nodeB: string;
  let nodeC: string;
  /** Set when the objects are made, not when this file loads: the control plane may take long to start. */
  let times: { weekly: string; nightly: string; round2: string; restored: string };

  /** Runs the CLI; returns stdout, failing on a non-zero exit. */
  async function digest(...argv: string[]): Promise<string> {
    let out = "";
    let err = "";
    const code = await runDigest(
      ["--kubeconfig", kubeconfig, ...argv],
      (s) => (out += s),
      (s) => (err += s),
    );
    assert.equal(code, 0, `fedbackup digest ${argv.join(" ")} exited ${code}: ${err}`);
    return out;
  }

  async function rows(...argv: string[]): Promise<DigestRow[]> {
    return JSON.parse(await digest("-o", "json", ...argv)) as DigestRow[];
  }

  async function names(...argv: string[]): Promise<string[]> {
    return (await rows(...argv)).map((r) => `${r.namespace}/${r.name}`);
  }

  before(async function () {
    this.timeout(120_000);
    kubeconfig = cluster().kubeconfigPath;
    times = { weekly: ago(8 * DAY), nightly: ago(2 * HOUR), round2: ago(1 * HOUR), restored: ago(30 * MIN) };
    ns = await freshNamespace("digest");
    other = await freshNamespace("digest-other");
    nodeB = `${ns}-b`;
    nodeC = `${ns}-c`;
    sharedDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-digest-"));
    const client = adminClient();
    await Promise.all([
      createVm(client, ns, sharedDir, { name: "web", node: "node-a", labels: { tier: "web" } }),
      createVm(client, ns, sharedDir, { name: "db", node: nodeB, labels: { tier: "db" } }),
      createVm(client, ns, sharedDir, { name: "mover", node: nodeB, labels: { tier: "db" } }),
      createVm(client, ns, sharedDir, { name: "flaky", node: nodeC, labels: { tier: "web" } }),
      createVm(client, ns, sharedDir, { name: "batch" }),
      createVm(client, other, sharedDir, { name: "tools", node: nodeB, labels: { tier: "web" } }),
      // Backed up, now stopped: its VirtualMachine exists without a VMI (Missing, not Deleted).
      createVirtualMachine(client, ns, sharedDir, { name: "gone", running: false }),
    ]);
    await createWithStatus(Resources.FederatedBackup, backupObject(ns, "weekly", times.weekly));
    await createWithStatus(Resources.FederatedBackup, backupObject(ns, "nightly", times.nightly));
    const steps: Array<[string, StepFields]> = [
      [
        "weekly-r1-node-a",
        {
          backup: "weekly",
          node: "node-a",
          phase: "Succeeded",
          completionTime: times.weekly,
          captured: [
            [ns, "web"],
            [ns, "db"],
            [ns, "gone"],
          ],
        },
      ],
      ["weekly-r1-c", { backup: "weekly", node: nodeC, phase: "Failed", completionTime: times.weekly }],
      [
        "nightly-r1-node-a",
        {
          backup: "nightly",
          node: "node-a",
          phase: "Succeeded",
          completionTime: times.nightly,
          captured: [[ns, "web"]],
          failed: [[ns, "mover", "Migrated"]],
        },
      ],
      ["nightly-r1-c", { backup: "nightly", node: nodeC, phase: "Failed", completionTime: times.nightly }],
      [
        "nightly-r1-b",
        {
          backup: "nightly",
          node: nodeB,
          phase: "Succeeded",
          completionTime: times.nightly,
          captured: [[other, "tools"]],
        },
      ],
      [
        "nightly-r2-b",
        {
          backup: "nightly",
          node: nodeB,
          round: 2,
          phase: "Succeeded",
          completionTime: times.round2,
          captured: [[ns, "mover"]],
        },
      ],
      [
        "stray",
        {
          backup: "nightly",
          node: nodeB,
          phase: "Succeeded",
          completionTime: times.round2,
          captured: [[ns, "batch"]],
          unmanaged: true,
        },
      ],
    ];
    await Promise.all(steps.map(([name, f]) => createWithStatus(Resources.NodeSnapshot, stepObject(ns, name, f))));
    const restore: WorkloadRestore & KubeObject = {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "WorkloadRestore",
      metadata: { namespace: ns, name: "restore-web" },
      spec: { backupRef: { name: "nightly" } },
      status: {
        phase: "Completed",
        startTime: times.restored,
        completionTime: times.restored,
        results: [
          { namespace: ns, name: "web", phase: "Restored", node: "node-a" },
          { namespace: ns, name: "db", phase: "Failed", message: "checksum mismatch" },
        ],
      },
    };
    await createWithStatus(Resources.WorkloadRestore, restore);
  });

  after(async () => {
    rmSync(sharedDir, { recursive: true, force: true });
    // Operators that later test files start watch every namespace: leave them no backups to adopt.
    const client = adminClient();
    for (const type of [Resources.FederatedBackup, Resources.NodeSnapshot, Resources.WorkloadRestore]) {
      const { items } = await client.list(type, { namespace: ns });
      await Promise.all(items.map((o) => client.delete(type, ns, o.metadata.name!)));
    }
  });

  it("lists every VM of a namespace with where it runs and its last backup and restore", async () => {
    const got = await rows("-n", ns);
    const byName = new Map(got.map((r) => [r.name, r]));
    assert.deepEqual([...byName.keys()], ["batch", "db", "flaky", "gone", "mover", "web"]);
    const pick = (r: DigestRow | undefined) => {
      const { labels: _labels, ...rest } = r!;
      return rest;
    };
    assert.deepEqual(pick(byName.get("web")), {
      namespace: ns,
      name: "web",
      node: "node-a",
      nodeReady: true,
      phase: "Running",
      migrating: false,
      disks: [{ volume: "disk0", type: "hostDisk" }],
      lastBackup: { backup: `${ns}/nightly`, at: times.nightly, node: "node-a", round: 1 },
      lastRestore: { restore: `${ns}/restore-web`, at: times.restored, node: "node-a" },
      backups: 2,
      // node-a is shared with other tests: only this test's failures are known.
      nodeFailures: byName.get("web")!.nodeFailures,
    });
    assert.deepEqual(pick(byName.get("db")), {
      namespace: ns,
      name: "db",
      node: nodeB,
      nodeReady: false,
      phase: "Running",
      migrating: false,
      disks: [{ volume: "disk0", type: "hostDisk" }],
      lastBackup: { backup: `${ns}/weekly`, at: times.weekly, node: "node-a", round: 1 },
      backups: 1,
      nodeFailures: 0,
    });
    assert.deepEqual(byName.get("mover")!.lastBackup, {
      backup: `${ns}/nightly`,
      at: times.round2,
      node: nodeB,
      round: 2,
    });
    assert.deepEqual(pick(byName.get("gone")), {
      namespace: ns,
      name: "gone",
      phase: "Missing",
      migrating: false,
      // As its capture recorded them: its file on the shared volume.
      disks: [{ type: "file", file: `${ns}/gone/disk0.img` }],
      lastBackup: { backup: `${ns}/weekly`, at: times.weekly, node: "node-a", round: 1 },
      backups: 1,
      nodeFailures: 0,
    });
    assert.equal(byName.get("flaky")!.nodeFailures, 2);
    assert.equal(byName.get("flaky")!.backups, 0);
    // Only the operator's steps count: the unmanaged "stray" step's capture of batch is not one.
    assert.equal(byName.get("batch")!.phase, "Pending");
    assert.equal(byName.get("batch")!.lastBackup, undefined);
    assert.deepEqual(byName.get("batch")!.labels, { app: "demo" });
  });

  it("filters by label selector", async () => {
    assert.deepEqual(await names("-n", ns, "-l", "tier=web"), [`${ns}/flaky`, `${ns}/web`]);
    assert.deepEqual(await names("-n", ns, "--selector", "tier,tier!=web"), [`${ns}/db`, `${ns}/mover`]);
    assert.deepEqual(await names("-n", ns, "-l", "!tier"), [`${ns}/batch`, `${ns}/gone`]);
    assert.deepEqual(await names("-n", ns, "-l", "app=demo,tier in (db),!nothing"), [`${ns}/db`, `${ns}/mover`]);
  });

  it("filters by node across all namespaces, including backups of another namespace", async () => {
    const got = await rows("-A", "--node", nodeB);
    assert.deepEqual(
      got.map((r) => `${r.namespace}/${r.name}`),
      [`${ns}/db`, `${ns}/mover`, `${other}/tools`],
    );
    assert.deepEqual(got[2]!.lastBackup, { backup: `${ns}/nightly`, at: times.nightly, node: nodeB, round: 1 });
    assert.deepEqual(await names("-A", "--node", nodeB, "-n", ns), await names("--all-namespaces", "--node", nodeB));
  });

  it("lists the kubeconfig context's namespace unless -n or -A says otherwise, as kubectl does", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-digest-contexts-"));
    try {
      // The harness's kubeconfig with two more contexts: one in this test's namespace, one in the other.
      const config = yaml.load(readFileSync(kubeconfig, "utf8")) as {
        contexts: Array<{ name: string; context: Record<string, string> }>;
        "current-context": string;
      };
      const base = config.contexts.find((c) => c.name === config["current-context"])!;
      config.contexts.push(
        { name: "digest-ns", context: { ...base.context, namespace: ns } },
        { name: "digest-other", context: { ...base.context, namespace: other } },
      );
      config["current-context"] = "digest-ns";
      const contexts = path.join(dir, "kubeconfig");
      writeFileSync(contexts, yaml.dump(config), { mode: 0o600 });
      const run = async (...argv: string[]): Promise<string[]> => {
        let out = "";
        let err = "";
        const code = await runDigest(
          ["--kubeconfig", contexts, "-o", "json", ...argv],
          (s) => (out += s),
          (s) => (err += s),
        );
        assert.equal(code, 0, err);
        return (JSON.parse(out) as DigestRow[]).map((r) => `${r.namespace}/${r.name}`);
      };
      assert.deepEqual(await run(), await names("-n", ns));
      assert.deepEqual(await run("--context", "digest-other"), [`${other}/tools`]);
      assert.deepEqual(await run("--context", "digest-other", "-n", ns), await names("-n", ns));
      const everywhere = await run("-A");
      assert.ok(everywhere.includes(`${ns}/web`) && everywhere.includes(`${other}/tools`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("filters by phase", async () => {
    assert.deepEqual(await names("-n", ns, "--phase", "Missing"), [`${ns}/gone`]);
    // A stopped VM is not a deleted one.
    assert.deepEqual(await names("-n", ns, "--deleted"), []);
    assert.deepEqual(await names("-n", ns, "--phase", "pending"), [`${ns}/batch`]);
    assert.deepEqual(await names("-n", other, "--phase", "Running"), [`${other}/tools`]);
  });

  it("filters by the time of the last backup and restore", async () => {
    assert.deepEqual(await names("-n", ns, "--backed-up-before", "1d"), [`${ns}/db`, `${ns}/gone`]);
    assert.deepEqual(await names("-n", ns, "--backed-up-since", "3h"), [`${ns}/mover`, `${ns}/web`]);
    assert.deepEqual(await names("-n", ns, "--backed-up-since", ago(9 * DAY), "--backed-up-before", ago(7 * DAY)), [
      `${ns}/db`,
      `${ns}/gone`,
    ]);
    assert.deepEqual(await names("-n", ns, "--restored-since", "1h"), [`${ns}/web`]);
    assert.deepEqual(await names("-n", ns, "--restored-since", "10m"), []);
    assert.deepEqual(await names("-n", ns, "--never-backed-up"), [`${ns}/batch`, `${ns}/flaky`]);
  });

  it("filters by failed steps on the VM's node", async () => {
    const got = await rows("-n", ns, "--min-node-failures", "2");
    assert.ok(got.every((r) => r.nodeFailures >= 2));
    // web runs on node-a, which other tests share; every other VM's node is this test's own.
    assert.deepEqual(
      got.filter((r) => r.name !== "web").map((r) => r.name),
      ["flaky"],
    );
  });

  it("prints a table by default and YAML on request", async () => {
    const table = (await digest("-n", ns)).split("\n");
    assert.match(table[0]!, /^NAMESPACE +NAME +NODE +PHASE +DISKS +LAST BACKUP +BACKUP +LAST RESTORE +FAILURES$/);
    const line = (name: string) => table.find((l) => l.split(/ {3,}/)[1] === name)?.split(/ {3,}/);
    assert.deepEqual(line("web")?.slice(2, 8), ["node-a", "Running", "hostDisk", "2h ago", "nightly", "30m ago"]);
    assert.deepEqual(line("db"), [
      ns,
      "db",
      `${nodeB} (NotReady)`,
      "Running",
      "hostDisk",
      "8d ago",
      "weekly",
      "-",
      "0",
    ]);
    assert.deepEqual(line("batch"), [ns, "batch", "-", "Pending", "hostDisk", "never", "-", "-", "0"]);
    assert.deepEqual(line("gone"), [ns, "gone", "-", "Missing", "file", "8d ago", "weekly", "-", "0"]);
    assert.equal(table.length, 1 + 6 + 1);

    assert.deepEqual(yaml.load(await digest("-n", other, "-o", "yaml")), await rows("-n", other));
  });

  it("says so on stderr when nothing matches a table", async () => {
    let out = "";
    let err = "";
    const code = await runDigest(
      ["--kubeconfig", kubeconfig, "-n", ns, "--phase", "Failed"],
      (s) => (out += s),
      (s) => (err += s),
    );
    assert.equal(code, 0);
    assert.equal(out, "");
    assert.equal(err, `No VMs found in namespace ${ns}.\n`);
    assert.deepEqual(await rows("-n", ns, "--phase", "Failed"), []);
  });

  it("works for a user who may read only one namespace", async () => {
    await asDigestViewer(ns, async (viewerConfig) => {
      let out = "";
      let err = "";
      const code = await runDigest(
        ["--kubeconfig", viewerConfig, "-n", ns, "-o", "json"],
        (s) => (out += s),
        (s) => (err += s),
      );
      assert.equal(code, 0, err);
      const viewer = JSON.parse(out) as DigestRow[];
      // The same digest, without node readiness (Nodes are not readable) ...
      const admin = (await rows("-n", ns)).map(({ nodeReady: _ready, ...r }) => r);
      // ... and with a node's failures counted over the steps the viewer may read: the admin's count every
      // namespace's, including failed steps other tests left on the same node.
      const withoutFailures = (r: DigestRow[]) => r.map(({ nodeFailures: _failures, ...rest }) => rest);
      assert.deepEqual(withoutFailures(viewer), withoutFailures(admin));
      viewer.forEach((r, i) => assert.ok(r.nodeFailures <= admin[i]!.nodeFailures, `${r.name}: nodeFailures`));
      // ... and all namespaces cannot be listed.
      const denied = await runDigest(
        ["--kubeconfig", viewerConfig, "-A"],
        () => undefined,
        (s) => (err = s),
      );
      assert.equal(denied, 1);
      assert.match(err, /^fedbackup digest: .*forbidden/);
    });
  });
});
