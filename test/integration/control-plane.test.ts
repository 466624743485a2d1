import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { REPO_ROOT } from "../harness/binaries.js";
import { processAlive as alive } from "../harness/processes.js";
import { cluster, freshNamespace } from "./setup.js";

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe("local control plane", () => {
  it("serves a real kube-apiserver of the pinned version", async () => {
    const version = JSON.parse((await cluster().get("/version")).body) as { gitVersion: string; platform: string };
    const pinned = readFileSync(path.join(REPO_ROOT, "hack/controlplane/versions.env"), "utf8");
    assert.match(version.gitVersion, /^v1\.\d+\.\d+/);
    if (cluster().binaries["kube-apiserver"].source === "cache") assert.ok(pinned.includes(version.gitVersion));
  });

  it("has three Ready simulated nodes, the first one a control-plane node", async () => {
    const nodes = await cluster().kubeConfig.makeApiClient(k8s.CoreV1Api).listNode();
    const ready = nodes.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    assert.deepEqual(ready.map((n) => n.metadata?.name).sort(), ["node-a", "node-b", "node-c"]);
    const controlPlane = nodes.items.filter(
      (n) => "node-role.kubernetes.io/control-plane" in (n.metadata?.labels ?? {}),
    );
    assert.deepEqual(
      controlPlane.map((n) => n.metadata?.name),
      ["node-a"],
    );
  });

  it("runs a Job pinned to a simulated node to Succeeded through the job controller and kwok", async () => {
    const namespace = await freshNamespace("job");
    const batch = cluster().kubeConfig.makeApiClient(k8s.BatchV1Api);
    await batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: "pinned" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              nodeName: "node-b",
              restartPolicy: "Never",
              containers: [{ name: "main", image: "busybox", command: ["true"] }],
            },
          },
        },
      },
    });
    const job = await until("the Job to succeed", 60_000, async () => {
      const j = await batch.readNamespacedJob({ name: "pinned", namespace });
      if (j.status?.failed) throw new Error(`job failed: ${JSON.stringify(j.status)}`);
      return j.status?.succeeded === 1 ? j : undefined;
    });
    assert.ok(job.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True"));
    const pods = await cluster()
      .kubeConfig.makeApiClient(k8s.CoreV1Api)
      .listNamespacedPod({ namespace, labelSelector: "job-name=pinned" });
    assert.equal(pods.items.length, 1);
    assert.equal(pods.items[0]?.spec?.nodeName, "node-b");
    assert.equal(pods.items[0]?.status?.phase, "Succeeded");
  });

  it("fails a Job whose pod exits non-zero, and the garbage collector removes its pods with it", async () => {
    const namespace = await freshNamespace("jobfail");
    const batch = cluster().kubeConfig.makeApiClient(k8s.BatchV1Api);
    const core = cluster().kubeConfig.makeApiClient(k8s.CoreV1Api);
    await batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: "failing" },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { annotations: { "fedbackup.test/exit-code": "3" } },
            spec: { nodeName: "node-c", restartPolicy: "Never", containers: [{ name: "main", image: "busybox" }] },
          },
        },
      },
    });
    await until("the Job to fail", 60_000, async () => {
      const j = await batch.readNamespacedJob({ name: "failing", namespace });
      return j.status?.conditions?.some((c) => c.type === "Failed" && c.status === "True") ? true : undefined;
    });
    await batch.deleteNamespacedJob({ name: "failing", namespace, propagationPolicy: "Background" });
    await until("the garbage collector to delete the Job's pods", 60_000, async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: "job-name=failing" });
      return pods.items.length === 0 ? true : undefined;
    });
  });

  it("enforces RBAC on a ServiceAccount token: 403 outside its Role, allowed inside", async () => {
    const namespace = await freshNamespace("rbac");
    const core = cluster().kubeConfig.makeApiClient(k8s.CoreV1Api);
    const rbac = cluster().kubeConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "narrow" } } });
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "visible" }, data: { a: "1" } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: "configmap-reader" },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "narrow-reads-configmaps" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "configmap-reader" },
        subjects: [{ kind: "ServiceAccount", name: "narrow", namespace }],
      },
    });
    const asNarrow = (await cluster().serviceAccountKubeConfig(namespace, "narrow")).makeApiClient(k8s.CoreV1Api);

    const cm = await asNarrow.readNamespacedConfigMap({ name: "visible", namespace });
    assert.equal(cm.data?.a, "1");
    await assert.rejects(asNarrow.listNamespacedSecret({ namespace }), (err: unknown) => {
      assert.ok(err instanceof k8s.ApiException);
      assert.equal(err.code, 403);
      assert.match(String(err.body), new RegExp(`system:serviceaccount:${namespace}:narrow`));
      return true;
    });
    await assert.rejects(
      asNarrow.createNamespacedConfigMap({ namespace, body: { metadata: { name: "not-allowed" } } }),
      (err: unknown) => err instanceof k8s.ApiException && err.code === 403,
    );
    await assert.rejects(
      asNarrow.listNamespacedConfigMap({ namespace: "default" }),
      (err: unknown) => err instanceof k8s.ApiException && err.code === 403,
    );
  });

  it("runs beside another control plane and leaves no process behind when its runner is killed", async function () {
    this.timeout(120_000);
    // A second cluster, started by a separate process that is then SIGKILLed: it must not collide with
    // the suite's own cluster, and the kernel must take its control-plane processes down with it.
    const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-second-"));
    try {
      const runner = spawn(
        process.execPath,
        ["--import", "tsx", "test/harness/cli.ts", "up", "--dir", dir, "--nodes", "1"],
        {
          cwd: REPO_ROOT,
          stdio: "ignore",
        },
      );
      await until("the second cluster", 90_000, () => {
        if (runner.exitCode !== null) throw new Error("the second cluster's runner exited early");
        return Promise.resolve(existsSync(path.join(dir, "ready")) ? true : undefined);
      });
      const pids = readFileSync(path.join(dir, "state", "pids"), "utf8")
        .trim()
        .split("\n")
        .map((line) => Number(line.split(" ")[0]));
      assert.equal(pids.length, 4, "etcd, kube-apiserver, kube-controller-manager, kwok");
      assert.ok(pids.every(alive));
      const second = readFileSync(path.join(dir, "ready"), "utf8").trim();
      assert.notEqual(second, cluster().server);
      runner.kill("SIGKILL");
      await until("every process of the killed cluster to exit", 30_000, () =>
        Promise.resolve(pids.some(alive) ? undefined : true),
      );
      // The suite's own cluster is unaffected.
      assert.equal((await cluster().get("/readyz")).status, 200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
