// Writes every reconciler makes the same way: idempotent creates and deletes, conditional status and
// finalizer updates.
import type { KubeClient } from "../../k8s/client.js";
import { isAlreadyExists, isNotFound } from "../../k8s/errors.js";
import type { ResourceType } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";

/** Creates the object; one that already exists counts as created (the manifests are deterministic). */
export async function createIfAbsent<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  manifest: T,
): Promise<T | undefined> {
  try {
    return await client.create<T>(type, manifest);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    return undefined;
  }
}

export async function deleteIfExists(
  client: KubeClient,
  type: ResourceType,
  namespace: string | undefined,
  name: string,
  propagationPolicy: "Background" | "Foreground" = "Background",
): Promise<void> {
  try {
    await client.delete(type, namespace, name, { propagationPolicy });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export function tryGet<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  namespace: string | undefined,
  name: string,
): Promise<T | undefined> {
  return client.find<T>(type, namespace, name);
}

/**
 * Applies the status under the operator's field manager, conditional on the copy the decision was taken
 * on: a decision made on an outdated copy is refused (409) and taken again on the current one.
 */
export function writeStatus<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T & { apiVersion?: string; kind?: string },
  status: unknown,
): Promise<T> {
  return client.apply<T>(
    type,
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        resourceVersion: obj.metadata.resourceVersion,
      },
      status,
    } as unknown as T,
    { subresource: "status" },
  );
}

/**
 * Replaces the status (an update of the status subresource), conditional on the copy the decision was taken
 * on like writeStatus, but without a server-side apply's merge: nothing of the old status outlives the new
 * one, whatever list semantics the CRD declares. The whole status is replaced, so the writer must be its
 * only one.
 */
export function replaceStatus<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  status: unknown,
): Promise<T> {
  // managedFields left out: the API server keeps them (and records this update) rather than taking ours.
  const { managedFields: _managedFields, ...metadata } = obj.metadata;
  return client.replace<T>(type, { ...obj, metadata, status }, "status");
}

/** Adds or removes a finalizer, conditional on the copy at hand. */
export async function setFinalizer(
  client: KubeClient,
  type: ResourceType,
  obj: KubeObject,
  finalizer: string,
  present: boolean,
): Promise<void> {
  const others = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  await client.patch(type, obj.metadata.namespace, obj.metadata.name!, {
    metadata: {
      finalizers: present ? [...others, finalizer] : others,
      resourceVersion: obj.metadata.resourceVersion,
    },
  });
}
