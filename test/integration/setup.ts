// Mocha root hooks: one real control plane (3 simulated nodes, CRDs from crds/ and the test fixtures)
// shared by every integration test file. Tests isolate themselves in namespaces of their own.
import * as k8s from "@kubernetes/client-node";
import { ControlPlane, defaultNodes } from "../harness/control-plane.js";

let controlPlane: ControlPlane | undefined;

export function cluster(): ControlPlane {
  if (!controlPlane)
    throw new Error("the control plane is not running (is test/integration/setup.ts loaded with --require?)");
  return controlPlane;
}

const teardowns: Array<() => Promise<void>> = [];
/** Runs `fn` before the control plane stops (for servers and runners started lazily by tests). */
export function onTeardown(fn: () => Promise<void>): void {
  teardowns.push(fn);
}

let namespaceCounter = 0;
/** Creates a namespace of its own for a test and waits until its default ServiceAccount exists. */
/**
 * The Pod Security level the agent's namespace needs (README: "Pod security"), enforced on every test
 * namespace so that every scenario runs its agent pods under it.
 */
export const AGENT_POD_SECURITY = { "pod-security.kubernetes.io/enforce": "baseline" };

export async function freshNamespace(
  prefix: string,
  labels: Record<string, string> = AGENT_POD_SECURITY,
): Promise<string> {
  const core = cluster().kubeConfig.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${process.pid}-${++namespaceCounter}`;
  await core.createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    // A cold start may build the binaries first (see hack/controlplane/build.sh).
    this.timeout(60 * 60_000);
    const started = Date.now();
    // Different capacities so that the FreeResources ordering policy has something to tell apart.
    const capacity = [
      { cpu: "32", memory: "128Gi" },
      { cpu: "16", memory: "64Gi" },
      { cpu: "64", memory: "256Gi" },
    ];
    controlPlane = await ControlPlane.start({
      nodes: defaultNodes(3).map((n, i) => ({ ...n, capacity: capacity[i] })),
    });
    const sources = Object.entries(controlPlane.binaries)
      .map(([name, b]) => `${name}=${b.source}`)
      .join(" ");
    console.log(
      `  integration tests run against kube-apiserver ${controlPlane.serverVersion} at ${controlPlane.server}` +
        ` (started in ${((Date.now() - started) / 1000).toFixed(1)} s; ${sources})`,
    );
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    // Each teardown gets 15 s: one that hangs must not keep the control plane from stopping.
    for (const fn of teardowns.splice(0).reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error("a teardown took longer than 15 s")), 15_000);
      });
      await Promise.race([fn(), timeout]).catch((err: unknown) => console.error(err));
      clearTimeout(timer);
    }
    await controlPlane?.stop();
  },
};
