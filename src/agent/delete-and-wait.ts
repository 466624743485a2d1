// Deleting what an earlier attempt of a step's Job left (a VolumeSnapshot, a VolumeGroupSnapshot) before
// cutting again: the object must be gone, not only marked for deletion, or the new one of the same name
// could not be created.
import type { KubeClient } from "../k8s/client.js";
import { isNotFound } from "../k8s/errors.js";
import type { ResourceType } from "../k8s/resources.js";

/** Deletes the object and waits until the API server no longer has it (a no-op when it does not exist). */
export async function deleteAndWait(
  client: KubeClient,
  resource: ResourceType,
  ns: string,
  name: string,
  pollMs: number,
): Promise<void> {
  try {
    await client.delete(resource, ns, name);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  for (let i = 0; i < 600; i++) {
    try {
      await client.get(resource, ns, name);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`the ${resource.kind} ${name} of an earlier attempt is still being deleted`);
}
