// The Leases that keep two runs on one storage back end from working at once: one per back end, keyed as
// planning/storage-group.ts keys them (`volume/<identity>` for a shared volume, `storageclass/<name>`,
// `group/<name>`, `claim/<namespace>/<name>`). Its holder is the node whose step runs; annotations name
// the run (FederatedBackup or WorkloadRestore) that owns it, so two runs on one back end never overlap: the
// second waits until the first releases it, or until the Lease has expired and its owner is gone.
import { microTime } from "../api/timestamps.js";
import { fnv1a32Hex } from "../planning/fnv1a.js";
import type { KubeClient } from "./client.js";
import { ApiError, isAlreadyExists, isConflict, isNotFound } from "./errors.js";
import { Resources } from "./resources.js";
import type { KubeObject } from "./types.js";

export const LEASE_OWNER_ANNOTATION = "fedbackup.io/owner";
export const LEASE_STEP_ANNOTATION = "fedbackup.io/step";
/** The storage key the Lease stands for (storage-group.ts), for `kubectl get lease -o yaml` readers. */
export const LEASE_STORAGE_ANNOTATION = "fedbackup.io/storage-backend";

export interface LeaseObject extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaseView {
  holderNode?: string;
  owner?: string;
  step?: string;
  renewTime?: number;
  durationSeconds: number;
}

export function viewLease(lease: LeaseObject | undefined): LeaseView | undefined {
  if (!lease) return undefined;
  const renew = lease.spec?.renewTime ?? lease.spec?.acquireTime;
  return {
    holderNode: lease.spec?.holderIdentity || undefined,
    owner: lease.metadata.annotations?.[LEASE_OWNER_ANNOTATION] || undefined,
    step: lease.metadata.annotations?.[LEASE_STEP_ANNOTATION] || undefined,
    renewTime: renew ? Date.parse(renew) : undefined,
    durationSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  };
}

/**
 * A Lease name (a DNS subdomain) for `text`: the text made readable and bounded, with a hash of the text
 * itself, since cleaning maps several texts to one ("nfs:h:/a/b" and "nfs:h:/a-b").
 */
function boundedLeaseName(prefix: string, text: string): string {
  const clean = text
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 200)
    .replace(/[-.]+$/g, "");
  return `${prefix}${clean}-${fnv1a32Hex(text)}`;
}

/** The Lease of a shared volume, by its filesystem identity (runtime/volume-identity.ts). */
export function volumeLeaseName(volumeId: string): string {
  return boundedLeaseName("fedbackup-volume-", volumeId);
}

const VOLUME_KEY = "volume/";

/**
 * The Lease of a storage key. A `volume/<identity>` key keeps the name the shared volume's Lease has always
 * had, so that runs of an older operator and of this one on one volume still exclude each other; the other
 * keys get names of their own (the whole key hashed: a StorageClass and a group of one name stay apart).
 */
export function storageLeaseName(key: string): string {
  return key.startsWith(VOLUME_KEY)
    ? volumeLeaseName(key.slice(VOLUME_KEY.length))
    : boundedLeaseName("fedbackup-storage-", key);
}

export class VolumeLeases {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly durationSeconds = 60,
  ) {}

  async read(key: string): Promise<LeaseObject | undefined> {
    try {
      return await this.client.get<LeaseObject>(Resources.Lease, this.namespace, storageLeaseName(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Takes or renews the Lease of storage key `key` for `owner`, with `node` as holder. `current` is what the caller read and
   * decided it may take; the update carries its resourceVersion, so a concurrent change makes this
   * fail with a conflict (retry on the next pass) instead of two owners believing they hold it.
   */
  async claim(
    key: string,
    current: LeaseObject | undefined,
    owner: string,
    node: string,
    step: string,
    now: number,
  ): Promise<LeaseObject> {
    const name = storageLeaseName(key);
    const sameOwner = viewLease(current)?.owner === owner;
    const transitions =
      (current?.spec?.leaseTransitions ?? 0) + (current && viewLease(current)?.holderNode !== node ? 1 : 0);
    const body: LeaseObject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "fedbackup" },
        annotations: {
          [LEASE_OWNER_ANNOTATION]: owner,
          [LEASE_STEP_ANNOTATION]: step,
          [LEASE_STORAGE_ANNOTATION]: key,
          ...(key.startsWith(VOLUME_KEY) ? { "fedbackup.io/volume": key.slice(VOLUME_KEY.length) } : {}),
        },
        ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: node,
        leaseDurationSeconds: this.durationSeconds,
        acquireTime:
          sameOwner && current?.spec?.acquireTime && viewLease(current)?.holderNode === node
            ? current.spec.acquireTime
            : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: transitions,
      },
    };
    try {
      return current
        ? await this.client.replace(Resources.Lease, body)
        : await this.client.create(Resources.Lease, body);
    } catch (err) {
      if (isAlreadyExists(err) || isConflict(err))
        throw new ApiError(409, "Conflict", `lease ${name} changed while claiming it`);
      throw err;
    }
  }

  /** Gives the Lease up if `owner` holds it (a no-op otherwise). */
  async release(key: string, owner: string): Promise<void> {
    const current = await this.read(key);
    if (!current || viewLease(current)?.owner !== owner) return;
    await this.client.replace(Resources.Lease, {
      ...current,
      metadata: {
        ...current.metadata,
        annotations: { ...current.metadata.annotations, [LEASE_OWNER_ANNOTATION]: "", [LEASE_STEP_ANNOTATION]: "" },
      },
      spec: { ...current.spec, holderIdentity: "" },
    });
  }
}
