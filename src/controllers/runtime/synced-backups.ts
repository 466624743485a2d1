// Backups synced from a location's index (controllers/backuplocation/sync.ts) ran elsewhere: in another
// cluster, or in this one before it was rebuilt. They are restored from, listed in the digest, and never run.
import { LABEL_SYNCED } from "../../api/labels.js";
import type { FederatedBackup } from "../../api/v1alpha1/index.js";

export const isSynced = (backup: FederatedBackup): boolean => backup.metadata.labels?.[LABEL_SYNCED] === "true";
