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
    // A field set to undefined (a backupRef a test leaves out) is dropped by JSON.
    spec: { backupRef: { name: "nightly" }, ...spec },
  } as KubeObject);
  return waitForRestore(namespace, name, timeoutMs);
}

/** Waits for a WorkloadRestore's end; on a timeout says where it stood (its Progressing condition, each VM). */
export async function waitForRestore(namespace: string, name: string, timeoutMs = 240_000): Promise<Restore> {
  let last: Restore | undefined;
  try {
    return await waitFor(`WorkloadRestore ${name} to finish`, timeoutMs, async () => {
      last = await adminClient().get<Restore>(Resources.WorkloadRestore, namespace, name);
      return FINISHED.includes(last.status?.phase ?? "") ? last : undefined;
    });
  } catch (err) {
    const progressing = last?.status?.conditions?.find((c) => c.type === "Progressing");
    throw new Error(
      `${(err as Error).message}; ${progressing?.reason ?? "no condition"}: ${progressing?.message ?? ""}\n` +
        (last ? describeResults(last) : ""),
      { cause: err },
    );
  }
}

/** Waits until the VM's instance is Running on `node`; returns it. On a timeout, says what the VMI and VM are. */
export async function runningOn(
  namespace: string,
  name: string,
  node: string,
): Promise<VirtualMachineInstance & KubeObject> {
  let seen: unknown = "no VMI";
  try {
    return await waitFor(`${namespace}/${name} Running on ${node}`, 30_000, async () => {
      const vmi = await adminClient()
        .get<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, namespace, name)
        .catch(() => undefined);
      seen = vmi?.status ?? "no VMI";
      return vmi?.status?.phase === "Running" && vmi.status.nodeName === node ? vmi : undefined;
    });
  } catch (err) {
    const vm = await adminClient()
      .get(Resources.VirtualMachine, namespace, name)
      .catch(() => "no VirtualMachine");
    throw new Error(`${(err as Error).message}: VMI ${JSON.stringify(seen)}; VM ${JSON.stringify(vm)}`, { cause: err });
  }
}

/** One line per result, for an assertion message. */
export const describeResults = (r: Restore): string =>
  (r.status?.results ?? [])
    .map((x) => `${x.name} ${x.phase} ${x.definition ?? ""} ${x.reason ?? ""} ${x.message ?? ""}`)
    .join("\n");
