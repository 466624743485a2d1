// Label, annotation and finalizer names fedbackup puts on objects or reads from them.
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_BACKUP = "fedbackup.io/backup";
export const LABEL_RESTORE = "fedbackup.io/restore";
export const LABEL_NODE = "fedbackup.io/node";
export const LABEL_ROUND = "fedbackup.io/round";
/** On a FederatedBackup a BackupSchedule created: the schedule's name (no owner reference: the backup outlives it). */
export const LABEL_SCHEDULE = "fedbackup.io/schedule";
/**
 * On a FederatedBackup synced from a location's index (made by another cluster, or by this one before it was
 * rebuilt): "true". The operator never runs such a backup, and deleting it leaves its files at the location.
 */
export const LABEL_SYNCED = "fedbackup.io/synced";
/** On a synced FederatedBackup: the BackupLocation it was found at. */
export const ANNOTATION_SYNCED_FROM = "fedbackup.io/synced-from";
/** On a synced FederatedBackup: the uid the backup had in the cluster that ran it (its directory names it). */
export const ANNOTATION_SYNCED_UID = "fedbackup.io/synced-uid";
/** On a FederatedBackup a BackupSchedule created: the schedule time it was created for (RFC 3339, UTC). */
export const ANNOTATION_SCHEDULED_TIME = "fedbackup.io/scheduled-time";

/** The component label of node-agent pods; simulated kubelets in tests leave such pods alone. */
export const COMPONENT_AGENT = "agent";

/** On a VMI: more files of the VM on the shared volume (NVRAM, configuration), comma-separated node paths. */
export const ANNOTATION_EXTRA_FILES = "fedbackup.io/extra-files";
/** On a VMI: "true" marks it critical for the CriticalWorkload ordering policy. */
export const LABEL_CRITICAL = "fedbackup.io/critical";
/** On a VMI: an integer priority for the CriticalWorkload ordering policy. */
export const LABEL_PRIORITY = "fedbackup.io/priority";

/** On a FederatedBackup: the operator removes the backup's files and snapshots before it goes. */
export const FINALIZER_CLEANUP = "fedbackup.io/cleanup";
/** On a WorkloadRestore while it runs: the VMs it stopped are given back before it goes. */
export const FINALIZER_RELEASE_VMS = "fedbackup.io/release-vms";

/** Where the node agent's Job mounts the shared volume and the backup location. */
export const AGENT_SHARED_MOUNT = "/var/lib/fedbackup/shared";
export const AGENT_LOCATION_MOUNT = "/var/lib/fedbackup/location";
/** Where an S3 location's credentials Secret is mounted in the agent's Job (one file per key). */
export const AGENT_S3_CREDENTIALS_MOUNT = "/var/run/fedbackup/s3-credentials";
/** Where an agent Job mounts each Filesystem-mode claim of its VMs: `<this>/<claimName>` (its disk.img inside). */
export const AGENT_CLAIMS_MOUNT = "/var/lib/fedbackup/claims";
/** Where an agent Job attaches each Block-mode claim of its VMs: the device `<this>/<claimName>`. */
export const AGENT_CLAIM_DEVICES = "/var/lib/fedbackup/devices";
