// Which filesystem a claim is: the key of the shared-volume Lease. Two claims (in one namespace or two)
// bound to two PersistentVolumes that point at one filesystem must exclude each other, so the key is
// what the PersistentVolume points at, not its name.
import type { KubeClient } from "../../k8s/client.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { posix } from "node:path";
import { tryGet } from "./objects.js";

export interface PersistentVolumeSource {
  csi?: { driver?: string; volumeHandle?: string };
  nfs?: { server?: string; path?: string };
  hostPath?: { path?: string };
  local?: { path?: string };
  cephfs?: { monitors?: string[]; path?: string };
}

export interface PersistentVolumeLike {
  metadata: { name?: string };
  spec?: PersistentVolumeSource;
}

const dir = (p: string | undefined): string => posix.normalize(p || "/").replace(/(.)\/+$/, "$1");

/**
 * The identity of the filesystem behind a PersistentVolume: its CSI driver and volume handle, its NFS
 * server and export path, its CephFS monitors and path, its host path; else the volume's own name.
 */
export function filesystemIdentity(pv: PersistentVolumeLike): string {
  const s = pv.spec ?? {};
  if (s.csi?.driver && s.csi.volumeHandle) return `csi:${s.csi.driver}:${s.csi.volumeHandle}`;
  if (s.nfs?.server) return `nfs:${s.nfs.server.toLowerCase()}:${dir(s.nfs.path)}`;
  if (s.cephfs?.monitors?.length) return `cephfs:${[...s.cephfs.monitors].sort().join(",")}:${dir(s.cephfs.path)}`;
  if (s.hostPath?.path) return `hostpath:${dir(s.hostPath.path)}`;
  if (s.local?.path) return `local:${dir(s.local.path)}`;
  return `pv:${pv.metadata.name ?? ""}`;
}

/** The identity of the filesystem a claim is bound to; undefined while the claim is missing or unbound. */
export async function claimFilesystemIdentity(
  client: KubeClient,
  namespace: string,
  claimName: string,
): Promise<string | undefined> {
  const pvc = await tryGet<KubeObject & { spec?: { volumeName?: string } }>(
    client,
    Resources.PersistentVolumeClaim,
    namespace,
    claimName,
  );
  const volumeName = pvc?.spec?.volumeName;
  if (!volumeName) return undefined;
  const pv = await tryGet<KubeObject & PersistentVolumeLike>(client, Resources.PersistentVolume, undefined, volumeName);
  return pv ? filesystemIdentity(pv) : `pv:${volumeName}`;
}
