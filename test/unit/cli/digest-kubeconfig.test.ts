// Which API server, credentials and namespace `fedbackup digest` uses, as kubectl would: the kubeconfig
// (--kubeconfig, else $KUBECONFIG, else ~/.kube/config) before a pod's own credentials, --context to pick
// a context, and the context's namespace unless -n or -A says otherwise. The API servers are small HTTPS
// servers that answer every LIST with nothing and record what was asked of them.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "js-yaml";
import { run } from "../../../src/cli/commands.js";
import { createPki } from "../../harness/pki.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const VMIS = "/apis/kubevirt.io/v1";

interface FakeServer {
  url: string;
  /** "Bearer TOKEN GET /path", one per request. */
  requests: string[];
  close(): Promise<void>;
}

async function fakeApiServer(cert: string, key: string): Promise<FakeServer> {
  const requests: string[] = [];
  const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    requests.push(`${req.headers.authorization ?? "-"} ${req.method} ${new URL(req.url!, "https://x").pathname}`);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "List", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: [] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The VMI LISTs among the requests: the namespace the digest looked at, or every namespace. */
const vmiLists = (s: FakeServer): string[] => s.requests.filter((r) => r.endsWith("/virtualmachineinstances"));

describe("fedbackup digest: kubeconfig, context and namespace", function () {
  let dir: string;
  let serverA: FakeServer;
  let serverB: FakeServer;
  /** Stands for the API server a pod reaches with its ServiceAccount. */
  let inCluster: FakeServer;
  /** Contexts: a (server A, namespace team-a; current), b (server B, namespace team-b), bare (A, no namespace). */
  let kubeconfig: string;
  let home: string;
  const savedEnv = { ...process.env };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-cli-"));
    const pki = createPki(dir);
    serverA = await fakeApiServer(pki.servingCert, pki.servingKey);
    serverB = await fakeApiServer(pki.servingCert, pki.servingKey);
    inCluster = await fakeApiServer(pki.servingCert, pki.servingKey);
    const ca = readFileSync(pki.caCert).toString("base64");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "a", cluster: { server: serverA.url, "certificate-authority-data": ca } },
        { name: "b", cluster: { server: serverB.url, "certificate-authority-data": ca } },
      ],
      users: [
        { name: "alice", user: { token: "alice" } },
        { name: "bob", user: { token: "bob" } },
      ],
      contexts: [
        { name: "a", context: { cluster: "a", user: "alice", namespace: "team-a" } },
        { name: "b", context: { cluster: "b", user: "bob", namespace: "team-b" } },
        { name: "bare", context: { cluster: "a", user: "alice" } },
      ],
      "current-context": "a",
    };
    kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(kubeconfig, yaml.dump(config), { mode: 0o600 });
    home = path.join(dir, "home");
    mkdirSync(path.join(home, ".kube"), { recursive: true });
    writeFileSync(path.join(home, ".kube", "config"), yaml.dump({ ...config, "current-context": "b" }), {
      mode: 0o600,
    });
  });

  after(async () => {
    await Promise.all([serverA, serverB, inCluster].map((s) => s?.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const s of [serverA, serverB, inCluster]) s.requests.length = 0;
    // Outside a pod, with no kubeconfig unless a test sets one.
    delete process.env.KUBECONFIG;
    delete process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_PORT;
    process.env.HOME = path.join(dir, "nowhere");
  });

  afterEach(() => {
    for (const k of ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "HOME"]) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
  });

  /** As if inside a pod: in-cluster credentials point at the in-cluster server. */
  function inPod(): void {
    process.env.KUBERNETES_SERVICE_HOST = "127.0.0.1";
    process.env.KUBERNETES_SERVICE_PORT = new URL(inCluster.url).port;
  }

  async function digest(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const code = await run(["digest", ...argv], { out: (s) => (stdout += s), err: (s) => (stderr += s) });
    return { code, stdout, stderr };
  }

  it("lists the current context's namespace by default, as kubectl does", async () => {
    const got = await digest("--kubeconfig", kubeconfig);
    assert.deepEqual(got, { code: 0, stdout: "", stderr: "No VMs found in namespace team-a.\n" });
    assert.deepEqual(vmiLists(serverA), [`Bearer alice GET ${VMIS}/namespaces/team-a/virtualmachineinstances`]);
    assert.deepEqual(serverB.requests, []);
  });

  it("lists every namespace only with -A, which wins over -n", async () => {
    assert.deepEqual(await digest("--kubeconfig", kubeconfig, "-A"), {
      code: 0,
      stdout: "",
      stderr: "No VMs found.\n",
    });
    assert.equal((await digest("--kubeconfig", kubeconfig, "-n", "ops", "--all-namespaces")).code, 0);
    assert.deepEqual(vmiLists(serverA), [
      `Bearer alice GET ${VMIS}/virtualmachineinstances`,
      `Bearer alice GET ${VMIS}/virtualmachineinstances`,
    ]);
  });

  it("lists the namespace -n names", async () => {
    const got = await digest("--kubeconfig", kubeconfig, "-n", "ops", "-o", "json");
    assert.deepEqual(got, { code: 0, stdout: "[]\n", stderr: "" });
    assert.deepEqual(vmiLists(serverA), [`Bearer alice GET ${VMIS}/namespaces/ops/virtualmachineinstances`]);
  });

  it("uses the server, user and namespace of the context --context names", async () => {
    assert.equal(
      (await digest("--kubeconfig", kubeconfig, "--context", "b")).stderr,
      "No VMs found in namespace team-b.\n",
    );
    assert.equal((await digest("--kubeconfig", kubeconfig, "--context=b", "-n", "ops")).code, 0);
    assert.deepEqual(serverA.requests, []);
    assert.deepEqual(vmiLists(serverB), [
      `Bearer bob GET ${VMIS}/namespaces/team-b/virtualmachineinstances`,
      `Bearer bob GET ${VMIS}/namespaces/ops/virtualmachineinstances`,
    ]);
    // Every other LIST went there too: seven per run (VMIs, VirtualMachines, FederatedBackups, NodeSnapshots,
    // WorkloadRestores, Nodes, PersistentVolumeClaims).
    assert.ok(serverB.requests.every((r) => r.startsWith("Bearer bob GET ")));
    assert.equal(serverB.requests.length, 14);
    assert.ok(serverB.requests.includes(`Bearer bob GET ${VMIS}/namespaces/team-b/virtualmachines`));
  });

  it('lists namespace "default" when the context names none', async () => {
    assert.equal((await digest("--kubeconfig", kubeconfig, "--context", "bare")).code, 0);
    assert.deepEqual(vmiLists(serverA), [`Bearer alice GET ${VMIS}/namespaces/default/virtualmachineinstances`]);
  });

  it("exits 1 naming a context the kubeconfig does not have", async () => {
    const got = await digest("--kubeconfig", kubeconfig, "--context", "prod");
    assert.deepEqual(got, { code: 1, stdout: "", stderr: 'fedbackup digest: the kubeconfig has no context "prod"\n' });
    assert.deepEqual([...serverA.requests, ...serverB.requests], []);
  });

  it("reads $KUBECONFIG when no --kubeconfig is given", async () => {
    process.env.KUBECONFIG = kubeconfig;
    assert.equal((await digest()).code, 0);
    assert.deepEqual(vmiLists(serverA), [`Bearer alice GET ${VMIS}/namespaces/team-a/virtualmachineinstances`]);
  });

  describe("inside a pod", () => {
    it("prefers --kubeconfig to the pod's credentials", async () => {
      inPod();
      assert.equal((await digest("--kubeconfig", kubeconfig)).code, 0);
      assert.deepEqual(vmiLists(serverA), [`Bearer alice GET ${VMIS}/namespaces/team-a/virtualmachineinstances`]);
      assert.deepEqual(inCluster.requests, []);
    });

    it("prefers $KUBECONFIG to the pod's credentials", async () => {
      inPod();
      process.env.KUBECONFIG = kubeconfig;
      assert.equal((await digest("--context", "b")).code, 0);
      assert.deepEqual(vmiLists(serverB), [`Bearer bob GET ${VMIS}/namespaces/team-b/virtualmachineinstances`]);
      assert.deepEqual(inCluster.requests, []);
    });

    it("prefers ~/.kube/config to the pod's credentials", async () => {
      inPod();
      process.env.HOME = home;
      const got = await digest();
      assert.equal(got.code, 0, got.stderr);
      // ~/.kube/config's current context is b.
      assert.deepEqual(vmiLists(serverB), [`Bearer bob GET ${VMIS}/namespaces/team-b/virtualmachineinstances`]);
      assert.deepEqual(inCluster.requests, []);
    });
  });

  it("behaves the same through the real entry, in a process of its own", async function () {
    this.timeout(120_000);
    const got = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", path.join(REPO_ROOT, "src/cli/main.ts"), "digest", "--context", "b", "-o", "yaml"],
        {
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? "",
            HOME: home,
            KUBERNETES_SERVICE_HOST: "127.0.0.1",
            KUBERNETES_SERVICE_PORT: new URL(inCluster.url).port,
          },
          timeout: 60_000,
        },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== "number") return reject(new Error(err.message));
          resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr });
        },
      );
    });
    assert.deepEqual(got, { code: 0, stdout: "[]\n", stderr: "" });
    assert.deepEqual(vmiLists(serverB), [`Bearer bob GET ${VMIS}/namespaces/team-b/virtualmachineinstances`]);
    assert.deepEqual(inCluster.requests, []);
  });
});
