// How each claim of the selected VMs is cut (planning/workload-claim-methods.ts decides), from what the
// cluster says: the CSI driver of each claim's bound PersistentVolume, whether that volume's filesystem
// clones files (its annotation fedbackup.io/reflink, set by the user: "true" or "false"; absent is unknown,
// never guessed from the driver) and the VolumeSnapshotClasses that exist. The decision goes into the workload's claims, and from there into its step's spec, which the
// agent executes; a VM whose claims the method asked for cannot cut gets a claimProblem and is left out.
import type { FederatedBackup } from "../../api/v1alpha1/index.js";
import type { KubeClient } from "../../k8s/client.js";
import { isNotFound } from "../../k8s/errors.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import {
  planWorkloadClaimMethods,
  snapshotClassByDriver,
  type ObservedWorkload,
  type SnapshotClassInfo,
} from "../../planning/index.js";
import { tryGet } from "./objects.js";

// What dynamic provisioning (the CSI external-provisioner included) writes on a PV it made: its driver.
const PROVISIONED_BY = "pv.kubernetes.io/provisioned-by";
const DEFAULT_CLASS = "snapshot.storage.kubernetes.io/is-default-class";
const DEFAULT_GROUP_CLASS = "groupsnapshot.storage.kubernetes.io/is-default-class";
/** Set by the user on a PersistentVolume whose filesystem supports reflink clones ("true") or not ("false"). */
export const REFLINK_ANNOTATION = "fedbackup.io/reflink";

interface VolumeObject extends KubeObject {
  spec?: { csi?: { driver?: string } };
}

/**
 * The CSI driver of a PersistentVolume: spec.csi.driver, or for a volume that is not a CSI one in its spec
 * (an in-tree volume migrated to CSI, a local volume a CSI provisioner made), the provisioner it names.
 */
export function volumeDriver(pv: VolumeObject): string | undefined {
  return pv.spec?.csi?.driver || pv.metadata.annotations?.[PROVISIONED_BY] || undefined;
}

/** What the user says of a PersistentVolume's reflink support; undefined when nothing (or not a boolean). */
export function volumeReflink(pv: VolumeObject): boolean | undefined {
  const value = pv.metadata.annotations?.[REFLINK_ANNOTATION];
  return value === "true" ? true : value === "false" ? false : undefined;
}

/** The VolumeSnapshotClasses of the cluster; none when the snapshot API is not installed. */
export async function listSnapshotClasses(client: KubeClient): Promise<SnapshotClassInfo[]> {
  try {
    const list = await client.list<KubeObject & { driver?: string }>(Resources.VolumeSnapshotClass);
    return list.items.map((c) => ({
      name: c.metadata.name!,
      driver: c.driver ?? "",
      isDefault: c.metadata.annotations?.[DEFAULT_CLASS] === "true",
    }));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * The VolumeGroupSnapshotClasses of the cluster; none when the group snapshot API is not installed (or not
 * at the version the agent uses, v1beta2).
 */
export async function listGroupSnapshotClasses(client: KubeClient): Promise<SnapshotClassInfo[]> {
  try {
    const list = await client.list<KubeObject & { driver?: string }>(Resources.VolumeGroupSnapshotClass);
    return list.items.map((c) => ({
      name: c.metadata.name!,
      driver: c.driver ?? "",
      isDefault: c.metadata.annotations?.[DEFAULT_GROUP_CLASS] === "true",
    }));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * The workloads with each claim's method (and why), or with a claimProblem when the method asked for cannot
 * cut one of its claims. `drivers` caches PV name → driver across passes (a PV's driver never changes); the
 * reflink annotation is read on each pass, since the user may set it at any time.
 */
export async function withClaimMethods(
  client: KubeClient,
  backup: FederatedBackup,
  workloads: readonly ObservedWorkload[],
  drivers: Map<string, string | null>,
  /** The bound PersistentVolume of each claim of the backup's namespace, from the claims already listed. */
  boundVolumes: ReadonlyMap<string, string> = new Map(),
): Promise<ObservedWorkload[]> {
  const pending = workloads.filter((w) => w.claims?.length && !w.claimProblem);
  if (pending.length === 0) return [...workloads];
  const ns = backup.metadata.namespace!;
  const classes = await listSnapshotClasses(client);
  const named = backup.spec.snapshot?.volumeSnapshotClassName;
  const byDriver = snapshotClassByDriver(classes, named);
  const groupByDriver = snapshotClassByDriver(await listGroupSnapshotClasses(client));
  const namedDriver = named ? classes.find((c) => c.name === named)?.driver : undefined;
  const requested = backup.spec.snapshot?.method ?? "Auto";
  const volumeOf = async (claimName: string): Promise<{ driver?: string; reflink?: boolean }> => {
    const pvName =
      boundVolumes.get(claimName) ??
      (
        await tryGet<KubeObject & { spec?: { volumeName?: string } }>(
          client,
          Resources.PersistentVolumeClaim,
          ns,
          claimName,
        )
      )?.spec?.volumeName;
    if (!pvName) return {};
    const pv = await tryGet<VolumeObject>(client, Resources.PersistentVolume, undefined, pvName);
    if (!pv) return {};
    if (!drivers.has(pvName)) drivers.set(pvName, volumeDriver(pv) ?? null);
    const driver = drivers.get(pvName) ?? undefined;
    const reflink = volumeReflink(pv);
    return { ...(driver ? { driver } : {}), ...(reflink !== undefined ? { reflink } : {}) };
  };
  const out: ObservedWorkload[] = [];
  for (const w of workloads) {
    if (!pending.includes(w)) {
      out.push(w);
      continue;
    }
    const claimDrivers = new Map<string, string>();
    const reflink = new Map<string, boolean>();
    for (const c of w.claims!) {
      const volume = await volumeOf(c.claimName);
      if (volume.driver) claimDrivers.set(c.claimName, volume.driver);
      if (volume.reflink !== undefined) reflink.set(c.claimName, volume.reflink);
    }
    const planned = planWorkloadClaimMethods(
      { hasFiles: w.files.length > 0, claims: w.claims!, drivers: claimDrivers, reflink },
      requested,
      byDriver,
      // Explicit CSI cuts with the class the user named, so only claims of its driver can be cut.
      requested === "CSI" ? namedDriver : undefined,
      groupByDriver,
    );
    out.push(
      planned.ok
        ? { ...w, claims: planned.claims }
        : { ...w, claimProblem: { reason: planned.reason, detail: planned.detail } },
    );
  }
  return out;
}
