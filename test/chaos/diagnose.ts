// What a run that did not finish was waiting for: its steps, their Jobs and the Jobs' pods, one line each,
// printed under its violations so that a stuck run can be told from a slow one without keeping the cluster.
import { readFileSync } from "node:fs";
import type { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { PodRun } from "../harness/pod-runner.js";

type WithStatus = KubeObject & { status?: Record<string, unknown> & { phase?: string; message?: string } };

/** The last lines of a pod's container log. */
function logTail(run: PodRun, lines = 4): string[] {
  try {
    return readFileSync(run.log, "utf8")
      .trimEnd()
      .split("\n")
      .slice(-lines)
      .map((l) => `  | ${l.slice(0, 400)}`);
  } catch {
    return [];
  }
}

export async function describeNamespace(
  client: KubeClient,
  namespace: string,
  podRuns: readonly PodRun[],
): Promise<string[]> {
  const lines: string[] = [];
  const list = (type: (typeof Resources)[keyof typeof Resources]) =>
    client
      .list<WithStatus>(type, { namespace })
      .then((l) => l.items)
      .catch(() => [] as WithStatus[]);
  for (const s of [...(await list(Resources.NodeSnapshot)), ...(await list(Resources.NodeRestore))])
    lines.push(`${s.kind ?? "step"} ${s.metadata.name}: ${s.status?.phase ?? "-"} ${s.status?.message ?? ""}`.trim());
  for (const j of await list(Resources.Job)) {
    const st = j.status as {
      active?: number;
      succeeded?: number;
      failed?: number;
      conditions?: Array<{ type: string; status: string }>;
    };
    const conditions = (st?.conditions ?? []).filter((c) => c.status === "True").map((c) => c.type);
    lines.push(
      `Job ${j.metadata.name}: active ${st?.active ?? 0} succeeded ${st?.succeeded ?? 0} failed ${st?.failed ?? 0} ${conditions.join(",")}`,
    );
  }
  for (const p of await list(Resources.Pod)) {
    lines.push(`Pod ${p.metadata.name}: ${p.status?.phase ?? "-"}${p.metadata.deletionTimestamp ? " (deleting)" : ""}`);
    const run = podRuns.find((r) => r.namespace === namespace && r.name === p.metadata.name);
    if (run?.endedAt !== undefined) lines.push(`  its container exited (${run.signal ?? `code ${run.exitCode}`})`);
    if (run) lines.push(...logTail(run));
  }
  return lines;
}
