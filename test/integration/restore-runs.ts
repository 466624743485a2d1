// Running a WorkloadRestore to its end, and waiting for a VM to run where a restore put it: shared by the
// restore scenarios.
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { adminClient, waitFor } from "./operator-env.js";

export type Restore = WorkloadRestore & KubeObject;

const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

/** Creates a WorkloadRestore in `namespace` (from the backup "nightly" unless the spec says otherwise) and waits for its end. */
export async function restoreAndWait(
  namespace: string,
  name: string,
  spec: Partial<WorkloadRestore["spec"]>,
  timeoutMs = 240_000,
): Promise<Restore> {
  await adminClient().create(Resources.WorkloadRestore, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name, namespace },
    spec: { backupRef: { name: "nightly" }, ...spec },
  } as KubeObject);
  let last: Restore | undefined;
  try {
    return await waitFor(`WorkloadRestore ${name} to finish`, timeoutMs, async () => {
      last = await adminClient().get<Restore>(Resources.WorkloadRestore, namespace, name);
      return FINISHED.includes(last.status?.phase ?? "") ? last : undefined;
    });
  } catch (err) {
    // Where it stood: the condition that says what it waits for, and each VM.
    const progressing = last?.status?.conditions?.find((c) => c.type === "Progressing");
    throw new Error(
      `${(err as Error).message}; ${progressing?.reason ?? "no condition"}: ${progressing?.message ?? ""}\n` +
        (last ? describeResults(last) : ""),
      { cause: err },
    );
  }
}

/** Waits until the VM's instance is Running on `node`; returns it. */
export function runningOn(namespace: string, name: string, node: string): Promise<VirtualMachineInstance & KubeObject> {
  return waitFor(`${namespace}/${name} Running on ${node}`, 30_000, async () => {
    const vmi = await adminClient()
      .get<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, namespace, name)
      .catch(() => undefined);
    return vmi?.status?.phase === "Running" && vmi.status.nodeName === node ? vmi : undefined;
  });
}

/** One line per result, for an assertion message. */
export const describeResults = (r: Restore): string =>
  (r.status?.results ?? [])
    .map((x) => `${x.name} ${x.phase} ${x.definition ?? ""} ${x.reason ?? ""} ${x.message ?? ""}`)
    .join("\n");
