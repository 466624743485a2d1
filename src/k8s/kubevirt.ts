// KubeVirt's subresource API (served by virt-api behind the aggregation layer): freeze and thaw a
// guest's filesystems through its QEMU guest agent, and read where a VMI is active.
import type { VirtualMachineInstance } from "../api/kubevirt.js";
import type { KubeClient } from "./client.js";
import { ApiError, isNotFound } from "./errors.js";
import { Resources } from "./resources.js";
import type { KubeObject } from "./types.js";

export type FreezeFailure = "NoGuestAgent" | "NotRunning" | "Migrating" | "NotFound" | "Other";

export class FreezeCallError extends Error {
  constructor(
    readonly failure: FreezeFailure,
    message: string,
  ) {
    super(message);
    this.name = "FreezeCallError";
  }
}

const subresource = (ns: string, name: string, op: string): string =>
  `/apis/subresources.kubevirt.io/v1/namespaces/${encodeURIComponent(ns)}/virtualmachineinstances/${encodeURIComponent(name)}/${op}`;

/** Classifies virt-api's answers (404, 409 "VM is not running", 500 wrapping the guest's error). */
export function classifyFreezeError(err: unknown): FreezeCallError {
  if (!(err instanceof ApiError)) return new FreezeCallError("Other", String(err));
  const text = err.message;
  if (err.status === 404) return new FreezeCallError("NotFound", text);
  if (err.status === 409 || /not running/i.test(text)) return new FreezeCallError("NotRunning", text);
  if (/guest agent is not connected|guest agent.*not.*(available|responding)/i.test(text))
    return new FreezeCallError("NoGuestAgent", text);
  if (/during migration|migrat/i.test(text)) return new FreezeCallError("Migrating", text);
  return new FreezeCallError("Other", text);
}

export class KubeVirtClient {
  constructor(private readonly client: KubeClient) {}

  async freeze(namespace: string, name: string, unfreezeTimeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.request("PUT", subresource(namespace, name, "freeze"), {
        body: { unfreezeTimeout: `${unfreezeTimeoutSeconds}s` },
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw classifyFreezeError(err);
    }
  }

  async unfreeze(namespace: string, name: string): Promise<void> {
    try {
      await this.client.request("PUT", subresource(namespace, name, "unfreeze"));
    } catch (err) {
      // Nothing to thaw when the VMI is gone.
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async getInstance(namespace: string, name: string): Promise<(VirtualMachineInstance & KubeObject) | undefined> {
    try {
      return await this.client.get<VirtualMachineInstance & KubeObject>(
        Resources.VirtualMachineInstance,
        namespace,
        name,
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
