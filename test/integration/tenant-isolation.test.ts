// Tenants are hostile: what fedbackup lets one VM owner, one namespace or one agent reach, tried against
// the real API server and RBAC, with agents executed for real on real files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, linkSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import {
  buildRunAccess,
  COMPONENT_AGENT_ACCESS,
  runAgentServiceAccountName,
} from "../../src/controllers/runtime/agent-access.js";
import { RunAccessGrants } from "../../src/controllers/runtime/step-access.js";
import { buildAgentJob } from "../../src/controllers/federatedbackup/builders.js";
import { runAccessOf } from "../../src/controllers/federatedbackup/run-access.js";
import { KubeClient } from "../../src/k8s/client.js";
import { ApiError } from "../../src/k8s/errors.js";
import { resourcePath, Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { backupSnapshotsPath } from "../../src/planning/index.js";
import { operatorDeployment } from "../harness/operator-deployment.js";
import { xfsImage } from "../harness/xfs.js";
import { createVm, createVolume, diskPaths, NODE_MOUNT_PATH, type VmFixture } from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  ensureOperatorRbac,
  kubevirtDouble,
  OPERATOR_NAMESPACE,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";

type Backup = FederatedBackup & KubeObject;
type Step = NodeSnapshot & KubeObject;

const finished = (namespace: string, name: string): Promise<Backup> => backupFinished(namespace, name);

const stepsOf = async (namespace: string, backup: string): Promise<Step[]> =>
  (
    await adminClient().list<Step>(Resources.NodeSnapshot, {
      namespace,
      labelSelector: `fedbackup.io/backup=${backup}`,
    })
  ).items;

/** sha256 of every regular file below a directory, by relative path. */
function digestTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile())
        out.set(path.relative(root, full), createHash("sha256").update(readFileSync(full)).digest("hex"));
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

async function expectStatus(code: number, what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (err) {
    assert.ok(err instanceof ApiError, `${what}: ${String(err)}`);
    assert.equal(err.status, code, `${what}: ${err.message}`);
    return;
  }
  assert.fail(`${what}: allowed, expected ${code}`);
}

/** Every Role, RoleBinding and ServiceAccount the operator granted to agents, in the given namespaces. */
async function grantsIn(namespaces: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const namespace of namespaces) {
    for (const type of [Resources.Role, Resources.RoleBinding, Resources.ServiceAccount]) {
      const list = await adminClient().list(type, {
        namespace,
        labelSelector: `app.kubernetes.io/component=${COMPONENT_AGENT_ACCESS}`,
      });
      found.push(...list.items.map((o) => `${type.kind} ${namespace}/${o.metadata.name}`));
    }
  }
  return found;
}

describe("Tenant isolation", function () {
  this.timeout(300_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("captures a VM's own files only: a file two VMs name goes to neither, an extra file away from its disks is refused", async () => {
    const env = await backupEnv("own-files");
    const operator = await startOperator();
    try {
      const victim: VmFixture = { name: "victim", node: "node-a" };
      const [victimDisk] = diskPaths(env.namespace, victim);
      const vms: VmFixture[] = [
        victim,
        // Names the victim's disk as one of its own extra files.
        {
          name: "thief",
          node: "node-b",
          annotations: { "fedbackup.io/extra-files": `${NODE_MOUNT_PATH}/${victimDisk}` },
        },
        // Names a file of its namespace, nobody's disk, that lies away from its own disks.
        {
          name: "nosy",
          node: "node-a",
          annotations: { "fedbackup.io/extra-files": `${NODE_MOUNT_PATH}/${env.namespace}/notes.txt` },
        },
        { name: "honest", node: "node-b" },
      ];
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      const before = digestTree(env.shared.hostDir);

      await adminClient().create(Resources.FederatedBackup, backupManifest(env.namespace, "nightly"));
      const fb = await finished(env.namespace, "nightly");
      assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status?.missing));
      const missing = new Map((fb.status?.missing ?? []).map((m) => [m.name, m]));
      assert.deepEqual([...missing.keys()].sort(), ["nosy", "thief", "victim"]);
      assert.equal(missing.get("victim")?.reason, "SharedFile");
      assert.match(missing.get("victim")!.message!, new RegExp(`also named by VM ${env.namespace}/thief`));
      assert.equal(missing.get("thief")?.reason, "SharedFile");
      assert.match(missing.get("thief")!.message!, new RegExp(`also named by VM ${env.namespace}/victim`));
      assert.equal(missing.get("nosy")?.reason, "UnsafeFile");
      assert.match(missing.get("nosy")!.message!, /notes\.txt: it is not in the directory of one of the VM's disks/);

      // Only the honest VM reached the location; no disk on the shared volume changed.
      const atLocation = digestTree(path.join(env.location.hostDir, fb.status.backupPath!));
      const captured = [...atLocation.keys()].filter((p) => p.includes("/files/"));
      assert.deepEqual(
        captured.map((p) => p.split("/").slice(-2).join("/")),
        ["honest/disk0.img"],
        captured.join(", "),
      );
      assert.ok(
        ![...atLocation.values()].includes(before.get(victimDisk!)!),
        "no byte-identical copy of the victim's disk",
      );
      assert.deepEqual(digestTree(env.shared.hostDir), before);
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });

  it("never follows a symlink, a hard link or a FIFO planted for a disk: refused with the path, no foreign byte captured", async () => {
    const env = await backupEnv("planted");
    const operator = await startOperator();
    try {
      const vms: VmFixture[] = [
        { name: "victim", node: "node-a" },
        { name: "victim2", node: "node-a" },
        { name: "symrel", node: "node-a" },
        { name: "symabs", node: "node-b" },
        { name: "symdir", node: "node-b" },
        { name: "hardlink", node: "node-c" },
        { name: "fifo", node: "node-c" },
      ];
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      const disk = (name: string) => path.join(env.shared.hostDir, env.namespace, name, "disk0.img");
      // A file outside the shared volume, as a ServiceAccount token would be.
      const secret = path.join(path.dirname(env.shared.hostDir), "secret");
      writeFileSync(secret, randomBytes(4096));
      const plant = (name: string, how: (file: string) => void) => {
        rmSync(disk(name));
        how(disk(name));
      };
      plant("symrel", (f) => symlinkSync("../victim/disk0.img", f));
      plant("symabs", (f) => symlinkSync(secret, f));
      rmSync(path.dirname(disk("symdir")), { recursive: true });
      symlinkSync("victim", path.dirname(disk("symdir")));
      plant("hardlink", (f) => linkSync(disk("victim2"), f));
      plant("fifo", (f) => execFileSync("mkfifo", [f]));
      const before = digestTree(env.shared.hostDir);
      const foreign = new Set([
        createHash("sha256").update(readFileSync(secret)).digest("hex"),
        createHash("sha256")
          .update(readFileSync(disk("victim2")))
          .digest("hex"),
      ]);
      const victimDigest = createHash("sha256")
        .update(readFileSync(disk("victim")))
        .digest("hex");

      await adminClient().create(Resources.FederatedBackup, backupManifest(env.namespace, "nightly"));
      const fb = await finished(env.namespace, "nightly");
      const missing = new Map((fb.status?.missing ?? []).map((m) => [m.name, m]));
      assert.deepEqual(
        [...missing.keys()].sort(),
        ["fifo", "hardlink", "symabs", "symdir", "symrel", "victim2"],
        JSON.stringify(fb.status?.missing, null, 1),
      );
      const expectations: Array<[string, RegExp]> = [
        ["symrel", /symrel\/disk0\.img.*symbolic link/],
        ["symabs", /symabs\/disk0\.img.*symbolic link/],
        ["symdir", /symdir.*symbolic link/],
        ["hardlink", /hardlink\/disk0\.img.*hard link/],
        ["victim2", /victim2\/disk0\.img.*hard link/],
        ["fifo", /fifo\/disk0\.img.*FIFO/],
      ];
      for (const [name, pattern] of expectations) {
        assert.equal(missing.get(name)?.reason, "UnsafeFile", name);
        assert.match(missing.get(name)?.message ?? "", pattern, name);
      }
      // The location holds the victim's disk once, in its own backup, and nothing from outside.
      const atLocation = digestTree(path.join(env.location.hostDir, fb.status!.backupPath!));
      const captured = [...atLocation].filter(([p]) => p.includes("/files/"));
      assert.deepEqual(
        captured.map(([p]) => p.split("/").slice(-2).join("/")),
        ["victim/disk0.img"],
      );
      assert.equal(captured[0]![1], victimDigest);
      for (const digest of atLocation.values()) assert.ok(!foreign.has(digest), "a foreign file reached the backup");
      assert.deepEqual(digestTree(env.shared.hostDir), before, "nothing on the shared volume changed");
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });

  it("grants a run's agents its own steps and VMs only, and takes every grant back when the run ends", async () => {
    const env = await backupEnv("grants");
    const other = await freshNamespace("grants-other");
    const operator = await startOperator();
    try {
      const vms: VmFixture[] = [
        { name: "a1", node: "node-a" },
        { name: "b1", node: "node-b" },
      ];
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await adminClient().create(Resources.FederatedBackup, backupManifest(env.namespace, "nightly"));
      const fb = await finished(env.namespace, "nightly");
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status));
      // Nothing granted for the run remains.
      assert.deepEqual(await grantsIn([env.namespace, other]), []);

      // Grant the run's access again exactly as the operator does (as the operator's ServiceAccount, so its
      // RBAC allows it without bind or escalate), then act as the run's agent with a real token.
      const steps = await stepsOf(env.namespace, "nightly");
      const nodeSteps = steps.filter((s) => !!s.spec.node);
      assert.equal(nodeSteps.length, 2);
      const access = buildRunAccess(runAccessOf(fb, steps));
      const grants = new RunAccessGrants(operator.client);
      await grants.grant(fb.metadata.uid!, access);
      const agent = new KubeClient(
        await cluster().serviceAccountKubeConfig(
          env.namespace,
          runAgentServiceAccountName({ name: fb.metadata.name!, uid: fb.metadata.uid! }),
        ),
      );
      try {
        for (const step of nodeSteps) {
          const own = step.metadata.name!;
          await agent.get(Resources.NodeSnapshot, env.namespace, own);
          await agent.patch(Resources.NodeSnapshot, env.namespace, own, { status: {} }, { subresource: "status" });
          await agent.get(Resources.VirtualMachineInstance, env.namespace, step.spec.workloads![0]!.name);
        }
        // Names the run has none of: another run's step, a VM the run did not capture.
        const otherStep = "weekly-r1-node-a";
        const otherVm = "late";
        await expectStatus(403, "patch another run's step status", () =>
          agent.patch(Resources.NodeSnapshot, env.namespace, otherStep, { status: {} }, { subresource: "status" }),
        );
        await expectStatus(403, "read another run's step", () =>
          agent.get(Resources.NodeSnapshot, env.namespace, otherStep),
        );
        await expectStatus(403, "delete a VolumeSnapshot", () =>
          agent.delete(Resources.VolumeSnapshot, env.namespace, nodeSteps[0]!.metadata.name!),
        );
        await expectStatus(403, "read a VM the run did not capture", () =>
          agent.get(Resources.VirtualMachineInstance, env.namespace, otherVm),
        );
        await expectStatus(403, "freeze a VM the run did not capture", () =>
          agent.request(
            "PUT",
            `/apis/subresources.kubevirt.io/v1/namespaces/${env.namespace}/virtualmachineinstances/${otherVm}/freeze`,
            { body: { unfreezeTimeout: "1m0s" } },
          ),
        );
        await expectStatus(403, "read anything in another namespace", () =>
          agent.list(Resources.VirtualMachineInstance, { namespace: other }),
        );

        // Revoked: nothing is allowed any more, and once the API server's ServiceAccount cache has seen the
        // deletion, the token does not even authenticate.
        await grants.revoke(fb.metadata.uid!, access);
        assert.deepEqual(await grantsIn([env.namespace]), []);
        const own = nodeSteps[0]!.metadata.name!;
        await waitFor("the revoked token to be refused", 30_000, async () => {
          try {
            await agent.get(Resources.NodeSnapshot, env.namespace, own);
          } catch (err) {
            if (err instanceof ApiError && err.status === 401) return true;
            assert.ok(err instanceof ApiError && err.status === 403, String(err));
            return undefined;
          }
          assert.fail("a revoked agent token could still read its step");
        });
      } finally {
        agent.close();
      }
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });

  it("keeps two backups of one name in two namespaces on one filesystem apart, one node step at a time", async function () {
    const xfs = xfsImage();
    if (typeof xfs === "string") {
      console.log(`      (skipped: ${xfs})`);
      this.skip();
    }
    const a = await backupEnv("same-fs-a");
    // The second namespace reaches the same directories through claims and PersistentVolumes of its own.
    const bNamespace = await freshNamespace("same-fs-b");
    await createVolume(adminClient(), bNamespace, "vmdisks", a.shared.hostDir);
    await createVolume(adminClient(), bNamespace, "backups", a.location.hostDir);
    const unmount = xfs.mount(a.shared.hostDir);
    const observer = new BackupObserver([a.namespace, bNamespace]);
    await observer.start();
    const operator = await startOperator();
    try {
      const vms: VmFixture[] = [
        { name: "web", node: "node-a" },
        { name: "db", node: "node-b" },
        { name: "api", node: "node-c" },
      ];
      for (const ns of [a.namespace, bNamespace]) {
        for (const vm of vms) await createVm(adminClient(), ns, a.shared.hostDir, vm);
      }
      const spec: Partial<FederatedBackup["spec"]> = { snapshot: { method: "Reflink" }, extractAt: "Restore" };
      for (const ns of [a.namespace, bNamespace]) {
        await adminClient().create(Resources.FederatedBackup, backupManifest(ns, "nightly", spec));
      }
      const [fbA, fbB] = await Promise.all([finished(a.namespace, "nightly"), finished(bNamespace, "nightly")]);
      for (const fb of [fbA, fbB]) assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status));
      // Six node steps over one filesystem, through two claims: never two at once.
      assert.equal(observer.jobs.length, 6, observer.jobs.map((j) => j.name).join(", "));
      assert.deepEqual(observer.overlaps, []);

      const keptA = path.join(
        a.shared.hostDir,
        backupSnapshotsPath(fbA.metadata as { namespace: string; name: string; uid: string }),
      );
      const keptB = path.join(
        a.shared.hostDir,
        backupSnapshotsPath(fbB.metadata as { namespace: string; name: string; uid: string }),
      );
      assert.notEqual(keptA, keptB);
      const keptBefore = digestTree(keptB);
      const filesBefore = digestTree(path.join(a.location.hostDir, fbB.status!.backupPath!));
      assert.equal(keptBefore.size, vms.length, [...keptBefore.keys()].join(", "));
      assert.ok(existsSync(keptA));

      await adminClient().delete(Resources.FederatedBackup, a.namespace, "nightly");
      await waitFor("A/nightly to be gone", 120_000, async () => {
        try {
          await adminClient().get(Resources.FederatedBackup, a.namespace, "nightly");
          return undefined;
        } catch (err) {
          return err instanceof ApiError && err.status === 404 ? true : undefined;
        }
      });
      assert.ok(!existsSync(keptA), "A's kept snapshots are removed");
      assert.ok(!existsSync(path.join(a.location.hostDir, fbA.status!.backupPath!)), "A's files are removed");
      assert.deepEqual(digestTree(keptB), keptBefore, "B's kept snapshots are intact");
      assert.deepEqual(digestTree(path.join(a.location.hostDir, fbB.status!.backupPath!)), filesBefore);
    } finally {
      await operator.stop();
      await observer.stop();
      unmount();
      xfs.cleanup();
      a.cleanup();
    }
  });

  describe("Pod Security", () => {
    const dryRunPod = (client: KubeClient, namespace: string, spec: unknown) =>
      client.request("POST", resourcePath(Resources.Pod, namespace), {
        query: { dryRun: "All" },
        body: { apiVersion: "v1", kind: "Pod", metadata: { generateName: "psa-", namespace }, spec },
      });

    it("admits the operator's pod where restricted is enforced", async () => {
      const deployment = operatorDeployment();
      // deploy/rbac.yaml makes the operator's namespace enforce restricted; its ServiceAccount lives there.
      await ensureOperatorRbac();
      const ns = await adminClient().get(Resources.Namespace, undefined, OPERATOR_NAMESPACE);
      assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
      await dryRunPod(adminClient(), OPERATOR_NAMESPACE, deployment.spec.template.spec);
      // The same pod without its seccomp profile is refused there: the check is real.
      const spec = deployment.spec.template.spec as { securityContext: Record<string, unknown> };
      const { seccompProfile: _dropped, ...lax } = spec.securityContext;
      await expectStatus(403, "the operator's pod without a seccomp profile", () =>
        dryRunPod(adminClient(), OPERATOR_NAMESPACE, { ...spec, securityContext: lax }),
      );
    });

    it("admits the agent's pod where baseline is enforced, and restricted refuses it (it runs as root)", async () => {
      const env: BackupEnv = await backupEnv("psa-agent");
      try {
        const step = {
          apiVersion: "fedbackup.io/v1alpha1",
          kind: "NodeSnapshot",
          metadata: { name: "nightly-r1-node-a", namespace: env.namespace, uid: "u" },
          spec: {
            backupName: "nightly",
            backupUID: "u",
            node: "node-a",
            round: 1,
            order: 1,
            sharedVolume: { claimName: "vmdisks", nodeMountPath: NODE_MOUNT_PATH },
            location: { persistentVolumeClaim: { claimName: "backups" }, path: "x" },
            snapshot: { method: "Copy", quiesce: "None", freezeTimeout: "30s", maxFreeze: "2m" },
            extractAt: "Backup",
            workloads: [],
          },
        } as unknown as Step;
        const backup = backupManifest(env.namespace, "nightly");
        backup.metadata.uid = "u";
        const job = buildAgentJob(backup, step, { agentImage: "fedbackup:test" });
        const podSpec = (job.spec.template as { spec: Record<string, unknown> }).spec;
        // The pod's ServiceAccount must exist for admission; this check is about its security context.
        const spec = { ...podSpec, serviceAccountName: "default" };
        await dryRunPod(adminClient(), env.namespace, spec);
        const restricted = await freshNamespace("psa-agent-r", { "pod-security.kubernetes.io/enforce": "restricted" });
        await expectStatus(403, "an agent pod under restricted", () => dryRunPod(adminClient(), restricted, spec));
        assert.ok(statSync(env.shared.hostDir).isDirectory());
      } finally {
        env.cleanup();
      }
    });
  });
});
