// The operator as users install it: `helm install` of charts/fedbackup into the control plane, the
// operator's pod executed by the harness's pod runner from the build output (the image's layout: dist/,
// package.json, production node_modules) with the chart's ServiceAccount token mounted where a kubelet
// puts it, and the agent Jobs it creates run the same way from the same "image". No admin credentials
// reach the operator or the agents. Then the backup and restore scenarios of the integration suite
// (several nodes, a migration mid-backup, restores to the active node and elsewhere, a corrupt file, the
// CSI method, a deletion that removes the files), and at the end what the chart's RBAC grants against
// what the operator and the agents were seen to use: a grant never used, a use denied, or a wildcard fails.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { FederatedBackup, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { backupFilesystemDiskPath } from "../../src/agent/manifest.js";
import { COMPONENT_AGENT_ACCESS } from "../../src/controllers/runtime/agent-access.js";
import { API_USAGE_MESSAGE, type UsageEntry } from "../../src/k8s/api-usage.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "../harness/binaries.js";
import { buildImageLayout } from "../harness/image-layout.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { PodRunner, SOURCE_PROGRAM, type PodRun } from "../harness/pod-runner.js";
import { freePort } from "../harness/ports.js";
import {
  compareUsage,
  expandRules,
  formatUsageReport,
  wildcardRules,
  type Permission,
  type PolicyRule,
} from "../harness/rbac-usage.js";
import { waitForBound } from "../harness/block-volumes.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVirtualMachine,
  diskPaths,
  migrateVm,
  type VmFixture,
} from "../harness/workloads.js";
import { BackupObserver } from "../integration/backup-observer.js";
import { BUCKET, backupTo, s3Location } from "../integration/s3-locations.js";
import { startObjectStore } from "../harness/object-store.js";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { restoreAndWait, runningOn } from "../integration/restore-runs.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  creatorPoliciesSettled,
  csiDouble,
  kubevirtDouble,
  OPERATOR_NAMESPACE,
  setNodeReady,
  waitFor,
  type BackupEnv,
} from "../integration/operator-env.js";
import { cluster, freshNamespace, onTeardown } from "../integration/setup.js";

const execFileP = promisify(execFile);
const RELEASE = "fedbackup";
const IMAGE = "fedbackup:e2e";
const CSI_CLASS = "fedbackup-e2e-hostpath";
/** Another driver name the CSI double answers for: it alone has a VolumeGroupSnapshotClass. */
const GROUP_DRIVER = "group.hostpath.csi.fedbackup.test";

/**
 * Grants of the operator that these scenarios do not use, each with the path that needs it. Kept short on
 * purpose: every other grant must be seen in use, and an entry here must still be granted.
 */
const NEEDED_ON_PATHS_NOT_TAKEN: Record<string, string> = {
  "delete fedbackup.io/nodesnapshots":
    "a backup step whose spec differs from the plan (made by an older version, or an object in the way) is deleted and made again",
  "delete fedbackup.io/noderestores": "a restore step whose spec differs from the plan is deleted and made again",
  "create authorization.k8s.io/selfsubjectaccessreviews":
    "a backup with spec.includeSecrets first checks that the operator may read Secrets (else SecretsNotPermitted)",
};

type Backup = FederatedBackup & KubeObject;
type Restore = WorkloadRestore & KubeObject;
type RoleObject = KubeObject & { rules?: PolicyRule[] };
type BindingObject = KubeObject & {
  roleRef: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
};

const rbac = (plural: string, kind: string, namespaced: boolean) => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced,
});
const ClusterRoles = rbac("clusterroles", "ClusterRole", false);
const ClusterRoleBindings = rbac("clusterrolebindings", "ClusterRoleBinding", false);
const Deployments = { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true };

/** The usage summaries a pod's process logged when it stopped (JSON log lines). */
function loggedUsage(run: PodRun): UsageEntry[] | undefined {
  if (!existsSync(run.log)) return undefined;
  for (const line of readFileSync(run.log, "utf8").split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { message?: string; requests?: UsageEntry[] };
    if (entry.message === API_USAGE_MESSAGE) return entry.requests;
  }
  return undefined;
}

function damage(env: BackupEnv, vm: VmFixture): void {
  for (const rel of diskPaths(env.namespace, vm)) {
    const file = path.join(env.shared.hostDir, rel);
    writeFileSync(file, Buffer.alloc(readFileSync(file).length, 0x5a));
  }
}

describe("e2e: the chart installed with helm, the operator running from its pod", function () {
  this.timeout(600_000);
  let app: string;
  let runner: PodRunner;
  let sim: SimulatedVmController;
  let healthPort: number;
  /** Every Role and RoleBinding the operator made for its agents, as created (they are gone by the end). */
  const agentRoles = new Map<string, RoleObject>();
  const agentBindings = new Map<string, BindingObject>();
  let roleInformer: Informer<RoleObject>;
  let bindingInformer: Informer<BindingObject>;
  const helm = () => cluster().binaries.helm.path;
  const helmArgs = (...args: string[]) => [...args, "--kubeconfig", cluster().kubeconfigPath];

  before(async function () {
    this.timeout(420_000);
    app = buildImageLayout();
    const imageProgram = [process.execPath, path.join(app, "dist/src/cli/main.js")];
    runner = new PodRunner(cluster(), { programFor: (image) => (image === IMAGE ? imageProgram : SOURCE_PROGRAM) });
    await runner.start();
    onTeardown(() => runner.stop());
    await kubevirtDouble();
    await (await csiDouble()).ensureClass(CSI_CLASS);
    sim = new SimulatedVmController(adminClient());
    await sim.start();
    onTeardown(() => sim.stop());

    const managed = { labelSelector: "app.kubernetes.io/managed-by=fedbackup" };
    roleInformer = new Informer<RoleObject>(adminClient(), Resources.Role, managed, { warn: () => {} });
    roleInformer.on((_e, r) => void agentRoles.set(`${r.metadata.namespace}/${r.metadata.name}`, r));
    bindingInformer = new Informer<BindingObject>(adminClient(), Resources.RoleBinding, managed, { warn: () => {} });
    bindingInformer.on((_e, b) => void agentBindings.set(`${b.metadata.namespace}/${b.metadata.name}`, b));
    await roleInformer.start();
    await bindingInformer.start();
    onTeardown(async () => {
      await roleInformer.stop();
      await bindingInformer.stop();
    });

    // As the README says: the namespace first, labelled for the Pod Security Standard the operator passes.
    await adminClient().create(Resources.Namespace, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: OPERATOR_NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
    });
    healthPort = await freePort();
    const metricsPort = await freePort();
    await execFileP(
      helm(),
      helmArgs(
        "install",
        RELEASE,
        path.join(REPO_ROOT, "charts/fedbackup"),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--set",
        "image.repository=fedbackup,image.tag=e2e,image.pullPolicy=Never",
        // The harness runs pods in the host's network namespace: two replicas would bind one port twice.
        // Leader election stays on (the one replica takes the Lease); failover has its own test.
        "--set",
        `replicaCount=1,metrics.port=${metricsPort},health.port=${healthPort}`,
        // Shorter than the default 60 s, as in the integration tests, so that a kill costs less waiting.
        "--set",
        "operator.leaseDurationSeconds=15",
        // The control plane of the tests already holds the admission policies (the same files, crds/).
        "--set",
        "admissionPolicies.enabled=false",
        // The S3 BackupLocation scenario: the operator reads its credentials Secret.
        "--set",
        "backupLocations.s3=true",
        "--wait=false",
      ),
    );
    const pod = await waitFor("the operator's pod to run", 60_000, () =>
      runner.runs.find((r) => r.namespace === OPERATOR_NAMESPACE && r.endedAt === undefined),
    ).catch(async (err: unknown) => {
      const events = await adminClient().list<KubeObject & { reason?: string; message?: string }>(
        { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
        { namespace: OPERATOR_NAMESPACE },
      );
      const pods = await adminClient().list(Resources.Pod, { namespace: OPERATOR_NAMESPACE });
      throw new Error(
        `${String(err)}\npods: ${JSON.stringify(pods.items.map((p) => [p.metadata.name, (p as { spec?: unknown }).spec, (p as { status?: unknown }).status]))}\n` +
          `events: ${events.items.map((e) => `${e.reason}: ${e.message}`).join("\n")}`,
      );
    });
    assert.equal(pod.image, IMAGE);
    assert.equal(pod.serviceAccount, `${RELEASE}-operator`);
    // Ready once every cache has its first list. A list refused while helm's RBAC is still arriving is
    // tried again with backoff (up to 30 s between tries), so the wait allows a few tries; if it still
    // times out, the operator's own log says why.
    await waitFor("the operator's /readyz", 180_000, async () => {
      const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
      return res?.ok ? true : undefined;
    }).catch((err: unknown) => {
      const state = pod.endedAt ? `ended (exit ${pod.exitCode}, signal ${pod.signal})` : "still runs";
      const tail = existsSync(pod.log) ? readFileSync(pod.log, "utf8").split("\n").slice(-40).join("\n") : "";
      throw new Error(`${String(err)}\nthe operator's pod ${state}; the end of its log:\n${tail}`);
    });
  });

  after(function () {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  const VMS: VmFixture[] = [
    { name: "a1", node: "node-a" },
    { name: "b1", node: "node-b" },
    { name: "b2", node: "node-b", disks: [128 * 1024, 64 * 1024] },
    { name: "b3", node: "node-b" },
    { name: "b4", node: "node-b" },
    { name: "c1", node: "node-c" },
    { name: "c2", node: "node-c" },
    // Its disk is a DataVolume (Filesystem mode): the Job mounts its claim.
    {
      name: "dv-1",
      node: "node-a",
      claimDisks: [{ source: "dataVolume", volumeMode: "Filesystem", size: 256 * 1024 }],
    },
  ];
  let env: BackupEnv;
  let backup: Backup;
  let atBackup: Map<string, Buffer>;
  let crossBackupCreatedAt = 0;

  const restore = (name: string, spec: Partial<WorkloadRestore["spec"]>): Promise<Restore> =>
    restoreAndWait(env.namespace, name, spec, 150_000);
  const runsOn = (name: string, node: string) => runningOn(env.namespace, name, node);

  function assertRestored(vm: VmFixture): void {
    for (const rel of diskPaths(env.namespace, vm)) {
      const now = readFileSync(path.join(env.shared.hostDir, rel));
      assert.ok(now.equals(atBackup.get(rel)!), `${rel} is not the backed-up content`);
    }
  }

  it("backs up 8 VMs on 3 nodes (one on a DataVolume), chases the one that migrated mid-backup in round 2, every byte equal", async () => {
    env = await backupEnv("e2e");
    onTeardown(async () => {
      await cleanupClaimDisks(env.namespace);
      env.cleanup();
    });
    for (const vm of VMS) await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, vm);
    for (const d of claimDisksOf(env.namespace, "dv-1")) await waitForBound(adminClient(), env.namespace, d.claimName);
    atBackup = new Map();
    for (const vm of VMS)
      for (const rel of diskPaths(env.namespace, vm))
        atBackup.set(rel, readFileSync(path.join(env.shared.hostDir, rel)));
    const observer = new BackupObserver([env.namespace], async (job, event) => {
      if (job.node === "node-b" && event === "finished" && !job.name.includes("-r2-"))
        await migrateVm(adminClient(), env.namespace, "c1", "node-c", "node-b");
    });
    await observer.start();
    try {
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "nightly", { snapshot: { method: "Copy" }, deletionPolicy: "Delete" }),
      );
      backup = await backupFinished(env.namespace, "nightly");
    } finally {
      await observer.stop();
    }
    assert.equal(backup.status?.phase, "Completed", JSON.stringify(backup.status, null, 1));
    assert.equal(backup.status?.progress?.round, 2);
    assert.equal(backup.status?.progress?.workloadsCaptured, VMS.length);
    assert.deepEqual(observer.overlaps, [], "one node at a time");
    const backupDir = path.join(env.location.hostDir, backup.status.backupPath!);
    for (const [rel, content] of atBackup) {
      const copy = readFileSync(path.join(backupDir, rel.split("/")[0]!, rel.split("/")[1]!, "files", rel));
      assert.ok(copy.equals(content), `${rel} differs at the location`);
    }
    for (const d of claimDisksOf(env.namespace, "dv-1")) {
      const copy = readFileSync(path.join(backupDir, backupFilesystemDiskPath(env.namespace, "dv-1", d.volumeName)));
      assert.ok(copy.equals(readFileSync(d.path)), `dv-1's ${d.volumeName} differs at the location`);
    }
    // The agents ran from the image too.
    const agentRuns = runner.runs.filter((r) => r.namespace === env.namespace);
    assert.ok(agentRuns.length >= 4, `agent pods: ${agentRuns.length}`);
    for (const r of agentRuns) assert.equal(r.image, IMAGE);
  });

  it("restores VMs on the node where each is active, byte for byte", async () => {
    const vms = VMS.filter((v) => ["a1", "b1", "c1"].includes(v.name));
    for (const vm of vms) damage(env, vm);
    const r = await restore("in-place", { workloads: vms.map((v) => ({ namespace: env.namespace, name: v.name })) });
    assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status, null, 1));
    const planned = new Map(r.status?.plan?.map((p) => [p.name, p.restoreNode]));
    assert.deepEqual(Object.fromEntries(planned), { a1: "node-a", b1: "node-b", c1: "node-b" });
    for (const vm of vms) assertRestored(vm);
    await runsOn("a1", "node-a");
    await runsOn("c1", "node-b");
  });

  it("fails only the VM whose backup file is corrupt, its disk untouched, and starts it again", async () => {
    const b2 = VMS.find((v) => v.name === "b2")!;
    const b3 = VMS.find((v) => v.name === "b3")!;
    damage(env, b2);
    damage(env, b3);
    const disks = diskPaths(env.namespace, b2);
    const before = disks.map((rel) => readFileSync(path.join(env.shared.hostDir, rel)));
    const copy = path.join(env.location.hostDir, backup.status!.backupPath!, env.namespace, "b2", "files", disks[1]!);
    const bytes = readFileSync(copy);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(copy, bytes);
    const r = await restore("corrupt", {
      workloads: [b2, b3].map((v) => ({ namespace: env.namespace, name: v.name })),
    });
    assert.equal(r.status?.phase, "PartiallyFailed", JSON.stringify(r.status, null, 1));
    const result = r.status?.results?.find((x) => x.name === "b2");
    assert.equal(result?.reason, "ChecksumMismatch");
    disks.forEach((rel, i) =>
      assert.ok(readFileSync(path.join(env.shared.hostDir, rel)).equals(before[i]!), `${rel} was touched`),
    );
    assertRestored(b3);
    await runsOn("b2", "node-b");
  });

  it("migrates a VM to the node named, then restores it there", async () => {
    const c2 = VMS.find((v) => v.name === "c2")!;
    damage(env, c2);
    const r = await restore("to-a", {
      workloads: [{ namespace: env.namespace, name: "c2" }],
      placement: { policy: "Specified", targetNode: "node-a" },
      conflictPolicy: "Migrate",
    });
    assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status, null, 1));
    assert.equal(r.status?.plan?.[0]?.action, "MigrateThenRestore");
    assertRestored(c2);
    await runsOn("c2", "node-a");
  });

  it("puts back a changed spec (definition Replace), then brings back two deleted VMs from their definitions", async () => {
    const ns = env.namespace;
    const getVm = (name: string) =>
      adminClient().get<KubeObject & { spec?: { template?: { spec?: Record<string, unknown> } } }>(
        Resources.VirtualMachine,
        ns,
        name,
      );
    // c1 names a Secret and a ConfigMap, which a restore that creates it checks (metadata only).
    await adminClient().create(Resources.Secret, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "c1-cloudinit", namespace: ns },
      stringData: { userdata: "#cloud-config\n" },
    } as KubeObject);
    await adminClient().create(Resources.ConfigMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c1-settings", namespace: ns },
      data: { mode: "test" },
    } as KubeObject);
    const volumes = ((await getVm("c1")).spec?.template?.spec?.volumes ?? []) as unknown[];
    await adminClient().patch(Resources.VirtualMachine, ns, "c1", {
      spec: {
        template: {
          spec: {
            volumes: [
              ...volumes,
              { name: "cloudinit", cloudInitNoCloud: { secretRef: { name: "c1-cloudinit" } } },
              { name: "settings", configMap: { name: "c1-settings" } },
            ],
          },
        },
      },
    });
    await adminClient().create(
      Resources.FederatedBackup,
      backupManifest(env, "defs", { workloads: { names: [{ name: "c1" }] }, snapshot: { method: "Copy" } }),
    );
    assert.equal((await backupFinished(ns, "defs", 150_000)).status?.phase, "Completed");

    await adminClient().patch(Resources.VirtualMachine, ns, "c1", {
      spec: { template: { spec: { terminationGracePeriodSeconds: 7 } } },
    });
    const replaced = await restore("replace", {
      backupRef: { name: "defs" },
      definition: "Replace",
      workloads: [{ namespace: ns, name: "c1" }],
    });
    assert.equal(replaced.status?.phase, "Completed", JSON.stringify(replaced.status, null, 1));
    assert.equal(replaced.status?.results?.[0]?.definition, "Replaced");
    assert.equal((await getVm("c1")).spec?.template?.spec?.terminationGracePeriodSeconds, undefined);
    // Where it runs (it migrated during the first backup), restored there.
    await runsOn("c1", replaced.status.plan![0]!.restoreNode!);

    // Deleted, with their instances: c1 (hostDisk) and dv-1 (its standalone DataVolume and claim stay).
    for (const name of ["c1", "dv-1"]) {
      await adminClient().delete(Resources.VirtualMachine, ns, name);
      await adminClient()
        .delete(Resources.VirtualMachineInstance, ns, name)
        .catch(() => undefined);
    }
    await waitFor("c1 and dv-1 gone", 60_000, async () => {
      const left = await Promise.all(
        ["c1", "dv-1"].map((name) =>
          adminClient()
            .get(Resources.VirtualMachineInstance, ns, name)
            .then(
              () => true,
              () => false,
            ),
        ),
      );
      return left.some(Boolean) ? undefined : true;
    });
    const back = await restore("bring-back", {
      workloads: [
        { namespace: ns, name: "c1", backupRef: { name: "defs" } },
        { namespace: ns, name: "dv-1" },
      ],
    });
    assert.equal(back.status?.phase, "Completed", JSON.stringify(back.status, null, 1));
    assert.deepEqual(back.status?.results?.map((x) => `${x.name} ${x.definition}`).sort(), [
      "c1 Created",
      "dv-1 Created",
    ]);
    // Created where each was captured.
    const nodes = new Map(back.status?.plan?.map((e) => [e.name, e.restoreNode!]));
    await runsOn("c1", nodes.get("c1")!);
    await runsOn("dv-1", nodes.get("dv-1")!);
    assert.deepEqual(back.status?.plan?.map((e) => `${e.name} ${e.action} ${e.definition}`).sort(), [
      "c1 RestoreThenStart Create",
      "dv-1 RestoreThenStart Create",
    ]);
  });

  it("backs up a VM of another namespace (checked against its creator's rights), and deletes it after its ttl", async () => {
    await creatorPoliciesSettled();
    const other = await freshNamespace("e2e-other");
    const far: VmFixture = { name: "far", node: "node-c" };
    await createVirtualMachine(adminClient(), other, env.shared.hostDir, far);
    crossBackupCreatedAt = Date.now();
    await adminClient().create(
      Resources.FederatedBackup,
      backupManifest(env, "cross", { workloads: { namespaces: [other] }, snapshot: { method: "Copy" }, ttl: "1m" }),
    );
    const fb = await backupFinished(env.namespace, "cross");
    assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
    assert.equal(fb.status?.progress?.workloadsCaptured, 1);
    const [rel] = diskPaths(other, far);
    const copy = readFileSync(path.join(env.location.hostDir, fb.status.backupPath!, other, "far", "files", rel!));
    assert.ok(copy.equals(readFileSync(path.join(env.shared.hostDir, rel!))));
  });

  it("records nodes that go NotReady (the failure history FailureRate ordering reads)", async () => {
    for (const node of ["node-c", "node-a"]) {
      await setNodeReady(node, false);
      await waitFor(`${node}'s NotReady to be recorded`, 30_000, async () => {
        const cm = await adminClient()
          .get<KubeObject & { data?: Record<string, string> }>(
            Resources.ConfigMap,
            OPERATOR_NAMESPACE,
            "fedbackup-node-health",
          )
          .catch(() => undefined);
        return cm && JSON.stringify(cm.data ?? {}).includes(node) ? true : undefined;
      });
      await setNodeReady(node, true);
    }
  });

  it("backs up through CSI VolumeSnapshots, one per node, byte for byte", async () => {
    const csiEnv = await backupEnv("e2e-csi");
    onTeardown(() => Promise.resolve(csiEnv.cleanup()));
    const vms: VmFixture[] = [
      { name: "x", node: "node-a" },
      { name: "y", node: "node-b" },
      { name: "z", node: "node-c" },
    ];
    for (const vm of vms) await createVirtualMachine(adminClient(), csiEnv.namespace, csiEnv.shared.hostDir, vm);
    await adminClient().create(
      Resources.FederatedBackup,
      backupManifest(csiEnv, "csi", { snapshot: { method: "CSI", volumeSnapshotClassName: CSI_CLASS } }),
    );
    const fb = await backupFinished(csiEnv.namespace, "csi");
    assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
    assert.equal(fb.status?.snapshotMethod, "CSI");
    for (const vm of vms) {
      for (const rel of diskPaths(csiEnv.namespace, vm)) {
        const source = readFileSync(path.join(csiEnv.shared.hostDir, rel));
        const copy = readFileSync(
          path.join(csiEnv.location.hostDir, fb.status.backupPath!, csiEnv.namespace, vm.name, "files", rel),
        );
        assert.ok(source.equals(copy), `${rel} differs`);
      }
    }
  });

  it("cuts a VM's claims in one VolumeGroupSnapshot where the driver has a group class, byte for byte", async () => {
    const groupEnv = await backupEnv("e2e-group");
    onTeardown(async () => {
      await cleanupClaimDisks(groupEnv.namespace);
      groupEnv.cleanup();
    });
    const double = await csiDouble();
    await double.ensureClass(`${CSI_CLASS}-group`, GROUP_DRIVER);
    await double.ensureGroupClass(`${CSI_CLASS}-group`, GROUP_DRIVER);
    const vm: VmFixture = {
      name: "g",
      node: "node-a",
      claimDisks: [
        { source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 192 * 1024, provisionedBy: GROUP_DRIVER },
        { source: "dataVolume", volumeMode: "Filesystem", size: 128 * 1024 + 1, provisionedBy: GROUP_DRIVER },
      ],
    };
    await createVirtualMachine(adminClient(), groupEnv.namespace, groupEnv.shared.hostDir, vm);
    for (const d of claimDisksOf(groupEnv.namespace, "g"))
      await waitForBound(adminClient(), groupEnv.namespace, d.claimName);
    await adminClient().create(
      Resources.FederatedBackup,
      backupManifest(groupEnv, "group", { snapshot: { method: "Auto" } }),
    );
    const fb = await backupFinished(groupEnv.namespace, "group");
    assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
    assert.deepEqual(
      double.groupSnapshots.filter((g) => g.namespace === groupEnv.namespace).map((g) => g.members.length),
      [2],
    );
    const left = await adminClient().list(Resources.VolumeGroupSnapshot, { namespace: groupEnv.namespace });
    assert.deepEqual(
      left.items.map((o) => o.metadata.name),
      [],
    );
    for (const d of claimDisksOf(groupEnv.namespace, "g")) {
      const copy = readFileSync(
        path.join(
          groupEnv.location.hostDir,
          fb.status.backupPath!,
          backupFilesystemDiskPath(groupEnv.namespace, "g", d.volumeName),
        ),
      );
      assert.ok(copy.equals(readFileSync(d.path)), `g's ${d.volumeName} differs at the location`);
    }
  });

  it("removes a deleted backup's files (deletionPolicy Delete) and says so", async () => {
    const dir = path.join(env.location.hostDir, backup.status!.backupPath!);
    assert.ok(existsSync(dir));
    await adminClient().delete(Resources.FederatedBackup, env.namespace, "nightly");
    await waitFor("the backup to be gone", 120_000, async () =>
      (await adminClient()
        .get(Resources.FederatedBackup, env.namespace, "nightly")
        .catch(() => undefined))
        ? undefined
        : true,
    );
    assert.equal(existsSync(dir), false, "the backup's files are still there");
  });

  it("runs a schedule every 5 s with keepLast 1: a newer backup replaces the older, its files deleted", async () => {
    const template = backupManifest(env, "unused", { workloads: { names: [{ name: "a1" }] } }).spec;
    await adminClient().create(Resources.BackupSchedule, {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "BackupSchedule",
      metadata: { name: "often", namespace: env.namespace },
      spec: { schedule: "*/5 * * * * *", template, retention: { keepLast: 1 } },
    });
    const list = async () =>
      (
        await adminClient().list<Backup>(Resources.FederatedBackup, {
          namespace: env.namespace,
          labelSelector: "fedbackup.io/schedule=often",
        })
      ).items;
    const completed = new Map<string, string>();
    await waitFor("two Completed backups of the schedule", 120_000, async () => {
      for (const b of await list())
        if (b.status?.phase === "Completed") completed.set(b.metadata.name!, b.status.backupPath!);
      return completed.size >= 2 ? true : undefined;
    });
    await adminClient().patch(Resources.BackupSchedule, env.namespace, "often", { spec: { suspend: true } });
    const [kept] = await waitFor("one backup of the schedule to remain", 120_000, async () => {
      const backups = await list();
      for (const b of backups)
        if (b.status?.phase === "Completed") completed.set(b.metadata.name!, b.status.backupPath!);
      const settled =
        backups.length === 1 && backups[0]!.status?.phase === "Completed" && !backups[0]!.metadata.deletionTimestamp;
      return settled ? backups : undefined;
    });
    assert.equal(kept!.metadata.name, [...completed.keys()].sort().at(-1));
    for (const [name, dir] of completed) {
      assert.equal(existsSync(path.join(env.location.hostDir, dir)), name === kept!.metadata.name, `${name}'s files`);
    }
    await adminClient().delete(Resources.BackupSchedule, env.namespace, "often");
  });

  it("backs up a VM to an S3 BackupLocation and restores it from the bucket; deleting the backup empties its prefix", async () => {
    const store = await startObjectStore({ buckets: [BUCKET] });
    onTeardown(() => store.stop());
    await s3Location(store, env.namespace, "offsite", "e2e");
    const backup = backupTo(env, "to-s3", "offsite");
    backup.spec = { ...backup.spec, workloads: { names: [{ name: "a1" }] }, deletionPolicy: "Delete" };
    await adminClient().create(Resources.FederatedBackup, backup);
    const done = await backupFinished(env.namespace, "to-s3", 120_000);
    assert.equal(done.status?.phase, "Completed", JSON.stringify(done.status?.conditions));
    const objects = async () =>
      (
        await store
          .client()
          .send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `e2e/${done.status!.backupPath}/` }))
      ).KeyCount ?? 0;
    assert.ok((await objects()) >= 3, "the VM's files and manifest are in the bucket");
    // The location's next sync indexes the finished run, for other clusters to find (README: backup sync).
    await waitFor("the backup's index in the bucket", 30_000, async () => {
      const key = `e2e/.fedbackup/index/${done.status!.backupPath}.json`;
      const page = await store.client().send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }));
      return page.KeyCount ? true : undefined;
    });
    const a1 = VMS.find((v) => v.name === "a1")!;
    const before = new Map(
      diskPaths(env.namespace, a1).map((rel) => [rel, readFileSync(path.join(env.shared.hostDir, rel))]),
    );
    damage(env, a1);
    const r = await restore("from-s3", {
      backupRef: { name: "to-s3" },
      workloads: [{ namespace: env.namespace, name: "a1" }],
    });
    assert.equal(r.status?.phase, "Completed", JSON.stringify(r.status?.results));
    for (const [rel, bytes] of before) {
      assert.ok(readFileSync(path.join(env.shared.hostDir, rel)).equals(bytes), `${rel} is not the backup's`);
    }
    await adminClient().delete(Resources.FederatedBackup, env.namespace, "to-s3");
    await waitFor("the backup's objects to be removed", 60_000, async () =>
      (await objects()) === 0 ? true : undefined,
    );
  });

  it("deletes the cross-namespace backup once its ttl (1m) is over", async () => {
    assert.ok(crossBackupCreatedAt > 0, "the cross-namespace backup ran");
    await waitFor("the backup past its ttl to be gone", 120_000, async () =>
      (await adminClient()
        .get(Resources.FederatedBackup, env.namespace, "cross")
        .catch(() => undefined))
        ? undefined
        : true,
    );
    // Timestamps have whole seconds: allow for one.
    assert.ok(Date.now() - crossBackupCreatedAt >= 59_000, "deleted before its ttl was over");
  });

  it("used exactly what the chart grants: no grant unused, no request denied, no wildcard", async function () {
    // Every run has ended: no agent ServiceAccount, Role or RoleBinding is left anywhere.
    const left: string[] = [];
    for (const type of [Resources.ServiceAccount, Resources.Role, Resources.RoleBinding]) {
      const list = await adminClient().list(type, {
        labelSelector: `app.kubernetes.io/component=${COMPONENT_AGENT_ACCESS}`,
      });
      left.push(...list.items.map((o) => `${type.kind} ${o.metadata.namespace}/${o.metadata.name}`));
    }
    assert.deepEqual(left, [], "agent access left after every run ended");

    // Stop the operator as a rollout would (its RBAC still in place): it logs what it used when it stops.
    await adminClient().patch(Deployments, OPERATOR_NAMESPACE, `${RELEASE}-operator`, {
      spec: { replicas: 0 },
    });
    const operatorRuns = runner.runs.filter((r) => r.namespace === OPERATOR_NAMESPACE);
    await waitFor("the operator to stop", 60_000, () => (operatorRuns.every((r) => r.endedAt) ? true : undefined));
    assert.deepEqual(
      operatorRuns.map((r) => r.exitCode),
      operatorRuns.map(() => 0),
      "the operator exited cleanly",
    );

    // What the chart grants the operator, as installed.
    const instance = { labelSelector: `app.kubernetes.io/instance=${RELEASE}` };
    const clusterRoles = (await adminClient().list<RoleObject>(ClusterRoles, instance)).items;
    const roles = (await adminClient().list<RoleObject>(Resources.Role, { ...instance, namespace: OPERATOR_NAMESPACE }))
      .items;
    const clusterBindings = (await adminClient().list<BindingObject>(ClusterRoleBindings, instance)).items;
    assert.ok(clusterRoles.length > 0 && roles.length > 0 && clusterBindings.length > 0);
    const operatorRules = [...clusterRoles, ...roles].flatMap((r) => r.rules ?? []);

    // What the operator granted its agents, per agent ServiceAccount.
    const agentRulesBySa = new Map<string, PolicyRule[]>();
    for (const b of agentBindings.values()) {
      const role = agentRoles.get(`${b.metadata.namespace}/${b.roleRef.name}`);
      assert.ok(role, `RoleBinding ${b.metadata.namespace}/${b.metadata.name} binds a Role never seen`);
      for (const s of b.subjects ?? []) {
        if (s.kind !== "ServiceAccount") continue;
        const key = `${s.namespace}/${s.name}`;
        agentRulesBySa.set(key, [...(agentRulesBySa.get(key) ?? []), ...(role.rules ?? [])]);
      }
    }
    assert.ok(agentRulesBySa.size > 0, "the operator granted its agents nothing");
    const allAgentRules = [...agentRulesBySa.values()].flat();
    assert.deepEqual(wildcardRules([...operatorRules, ...allAgentRules]), [], "rules with a wildcard");

    // What they used, from the summaries they logged when they stopped.
    const operatorUsage = operatorRuns.flatMap((r) => loggedUsage(r) ?? assert.fail(`${r.name} logged no usage`));
    const operatorReport = compareUsage(
      expandRules(operatorRules),
      operatorUsage,
      expandRules(allAgentRules),
      NEEDED_ON_PATHS_NOT_TAKEN,
    );
    const reports = [
      formatUsageReport(`operator (ServiceAccount ${OPERATOR_NAMESPACE}/${RELEASE}-operator)`, operatorReport),
    ];
    const problems: string[] = [];
    const check = (who: string, report: ReturnType<typeof compareUsage>) => {
      for (const k of report.unused) problems.push(`${who}: granted but never used: ${k}`);
      for (const d of report.denied) problems.push(`${who}: denied ${d.denied}x: ${d.key}`);
      for (const k of report.staleExplanations) problems.push(`${who}: ${k} is explained as needed but not granted`);
    };
    check("operator", operatorReport);

    // Agents: per ServiceAccount, what its Roles grant against what its pods used (every pod that used the API).
    const agentRuns = runner.runs.filter((r) => r.namespace !== OPERATOR_NAMESPACE);
    const usageBySa = new Map<string, UsageEntry[]>();
    for (const r of agentRuns) {
      const usage = loggedUsage(r);
      if (!usage) continue; // the cleanup Jobs use no API (and are granted nothing)
      const key = `${r.namespace}/${r.serviceAccount}`;
      usageBySa.set(key, [...(usageBySa.get(key) ?? []), ...usage]);
    }
    const agentGrants = new Map<string, { granted: Permission[]; used: UsageEntry[] }>();
    for (const [sa, rules] of agentRulesBySa)
      agentGrants.set(sa, { granted: expandRules(rules), used: usageBySa.get(sa) ?? [] });
    for (const [sa, used] of usageBySa) if (!agentGrants.has(sa)) agentGrants.set(sa, { granted: [], used });
    // One table per kind of step is enough to read; every ServiceAccount is checked.
    const shown = new Set<string>();
    for (const [sa, { granted, used }] of [...agentGrants].sort(([a], [b]) => a.localeCompare(b))) {
      const report = compareUsage(granted, used);
      check(`agent ${sa}`, report);
      const shape = report.used.map((u) => u.key).join(",");
      if (!shown.has(shape)) {
        shown.add(shape);
        reports.push(formatUsageReport(`agent (ServiceAccount ${sa})`, report));
      }
    }
    console.log(`\n${reports.join("\n\n")}\n  (${agentGrants.size} agent ServiceAccounts checked)\n`);
    assert.deepEqual(problems, []);
  });
});
