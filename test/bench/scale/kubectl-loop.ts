// The reference the scale benchmark compares the operator with: a shell-style loop over the same nodes that,
// for each, creates a Job pinned to the node with kubectl and waits for it with `kubectl wait
// --for=condition=complete`. The simulated agent (simulated-agent.ts) runs its pod as it runs the operator's,
// in the same `extractionMs`. `kubectl create job` cannot pin a node (and the harness runs no scheduler), so
// the Job is given to `kubectl create -f -`, one kubectl process as with `create job`.
import { spawn } from "node:child_process";
import { COMPONENT_AGENT, LABEL_COMPONENT } from "../../../src/api/labels.js";

export interface LoopResult {
  /** Nodes the loop went over (a prefix of the nodes given, when limited). */
  nodes: number;
  totalMs: number;
  /** Per node: from the create to the wait returning. */
  perNodeMs: number[];
}

function kubectl(binary: string, kubeconfig: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [`--kubeconfig=${kubeconfig}`, ...args], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`kubectl ${args.join(" ")}: ${stderr.trim()}`)),
    );
    child.stdin.end(input ?? "");
  });
}

export function loopJob(namespace: string, name: string, node: string): string {
  return JSON.stringify({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace, labels: { [LABEL_COMPONENT]: COMPONENT_AGENT, "bench.fedbackup.io/loop": "kubectl" } },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { [LABEL_COMPONENT]: COMPONENT_AGENT, "bench.fedbackup.io/loop": "kubectl" } },
        spec: {
          nodeName: node,
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          tolerations: [{ operator: "Exists" }],
          containers: [{ name: "agent", image: "fedbackup:bench", args: ["agent", "loop-step"] }],
        },
      },
    },
  });
}

export async function kubectlLoop(
  binary: string,
  kubeconfig: string,
  namespace: string,
  nodes: readonly string[],
): Promise<LoopResult> {
  const perNodeMs: number[] = [];
  const started = performance.now();
  for (const [i, node] of nodes.entries()) {
    const name = `loop-${String(i).padStart(4, "0")}`;
    const t = performance.now();
    await kubectl(binary, kubeconfig, ["create", "-f", "-"], loopJob(namespace, name, node));
    await kubectl(binary, kubeconfig, [
      "wait",
      "-n",
      namespace,
      "--for=condition=complete",
      `job/${name}`,
      "--timeout=120s",
    ]);
    perNodeMs.push(performance.now() - t);
  }
  return { nodes: nodes.length, totalMs: performance.now() - started, perNodeMs };
}
