// The BackupSchedule controller's pass: gather the schedule and the backups it created (by label, from the
// cache), decide (decide.ts), then create the due backup, delete what retention lets go, write the status and
// record the Events. Everything it knows comes from the cluster, so a restarted operator carries on where the
// last one stopped.
import { ANNOTATION_SCHEDULED_TIME, LABEL_SCHEDULE } from "../../api/labels.js";
import { API_VERSION, FEDERATED_BACKUP_KIND } from "../../api/v1alpha1/index.js";
import type { BackupSchedule, FederatedBackup } from "../../api/v1alpha1/index.js";
import type { KubeClient } from "../../k8s/client.js";
import { isAlreadyExists } from "../../k8s/errors.js";
import type { EventSink } from "../../k8s/events.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import type { Logger } from "../../telemetry/logger.js";
import { jsonEqual } from "../runtime/conditions.js";
import { checkCreatorAccess } from "../runtime/creator-check.js";
import { BACKUP_ACCESS, backupNamespaces } from "../runtime/creator-access.js";
import { deleteIfExists, writeStatus } from "../runtime/objects.js";
import { SECRETS_ACCESS } from "../runtime/secrets-permission.js";
import type { ReconcileResult } from "../runtime/work-queue.js";
import { decideSchedule, type ScheduleAction, type ScheduleBackup, type ScheduleWorld } from "./decide.js";
import { scheduleBackupOf } from "./schedule-backups.js";

export type ScheduleObject = BackupSchedule & KubeObject;
export type BackupObject = FederatedBackup & KubeObject;

export interface ScheduleReconcilerDeps {
  client: KubeClient;
  schedules: Informer<ScheduleObject>;
  backups: Informer<BackupObject>;
  events: EventSink;
  log: Logger;
  clock: { now(): number };
}

export class BackupScheduleReconciler {
  constructor(private readonly deps: ScheduleReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { schedules, client } = this.deps;
    const cached = schedules.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const schedule = structuredClone(cached);
    const world: ScheduleWorld = { schedule, backups: this.backupsOf(schedule), now: new Date(this.deps.clock.now()) };
    let decision = decideSchedule(world);
    if (decision.actions.some((a) => a.type === "CreateBackup")) {
      // Checked only when a run is due: the SubjectAccessReviews are asked for the schedule's creator.
      const refusal = await this.creatorRefusal(schedule);
      if (refusal) decision = decideSchedule({ ...world, refusal });
    }
    const events: ScheduleAction[] = [];
    // An action's Event follows it; one that had nothing to do drops its Event.
    let dropEvent = false;
    for (const action of decision.actions) {
      if (action.type !== "Event") dropEvent = !(await this.act(schedule, action));
      else if (dropEvent) dropEvent = false;
      else events.push(action);
    }
    if (!jsonEqual(schedule.status, decision.status)) {
      schedules.observe(await writeStatus(client, Resources.BackupSchedule, schedule, decision.status));
    }
    // Only once the status they report is written: a write that fails leaves them to the next pass.
    for (const event of events) {
      if (event.type === "Event") this.deps.events.record(schedule, event.kind, event.reason, event.message);
    }
    return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : undefined;
  }

  /** The schedule's backups in the cache; a labeled backup whose name and time do not agree is not one of them. */
  private backupsOf(schedule: ScheduleObject): ScheduleBackup[] {
    const name = schedule.metadata.name ?? "";
    return this.deps.backups
      .list((b) => b.metadata.namespace === schedule.metadata.namespace && b.metadata.labels?.[LABEL_SCHEDULE] === name)
      .flatMap((b) => scheduleBackupOf(name, b) ?? []);
  }

  private async creatorRefusal(schedule: ScheduleObject) {
    const template = schedule.spec.template;
    const asBackup = { metadata: schedule.metadata, spec: template } as FederatedBackup;
    const namespaces = backupNamespaces(asBackup);
    const { client } = this.deps;
    return (
      (await checkCreatorAccess(client, schedule, "BackupSchedule", namespaces, BACKUP_ACCESS)) ??
      (template.includeSecrets
        ? await checkCreatorAccess(client, schedule, "BackupSchedule", namespaces, SECRETS_ACCESS)
        : undefined)
    );
  }

  /** Carries out one action; false when there turned out to be nothing to do (its Event is then left out). */
  private async act(schedule: ScheduleObject, action: ScheduleAction): Promise<boolean> {
    const { client, log } = this.deps;
    const namespace = schedule.metadata.namespace;
    switch (action.type) {
      case "CreateBackup": {
        const backup: BackupObject = {
          apiVersion: API_VERSION,
          kind: FEDERATED_BACKUP_KIND,
          metadata: {
            name: action.name,
            namespace,
            labels: { [LABEL_SCHEDULE]: schedule.metadata.name ?? "" },
            annotations: { [ANNOTATION_SCHEDULED_TIME]: action.time.toISOString().replace(".000Z", "Z") },
          },
          spec: action.spec,
        };
        try {
          this.deps.backups.observe(await client.create(Resources.FederatedBackup, backup));
          log.info("created a scheduled backup", { namespace, schedule: schedule.metadata.name, backup: action.name });
          return true;
        } catch (err) {
          // The same name for the same time: an earlier pass created it and its status write was lost.
          if (isAlreadyExists(err)) return false;
          throw err;
        }
      }
      case "DeleteBackup":
        await deleteIfExists(client, Resources.FederatedBackup, namespace, action.name);
        log.info("deleted a backup retention no longer keeps", {
          namespace,
          schedule: schedule.metadata.name,
          backup: action.name,
          reason: action.reason,
        });
        return true;
      case "Event":
        return true;
    }
  }
}
