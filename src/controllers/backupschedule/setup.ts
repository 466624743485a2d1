// Registers the BackupSchedule controller with the manager: its schedules, and the backups they created (by
// label), whose progress wakes their schedule. Each pass asks to be queued again at the schedule's next time.
import { LABEL_SCHEDULE } from "../../api/labels.js";
import { Resources } from "../../k8s/resources.js";
import { backupCache } from "../runtime/caches.js";
import type { ControllerContext } from "../runtime/controller-context.js";
import { ownerByLabel } from "../runtime/owner-label.js";
import { BackupScheduleReconciler, type ScheduleObject } from "./reconciler.js";

export const SCHEDULE_CONTROLLER = "backupschedule";

export function setupBackupSchedule(ctx: ControllerContext): void {
  const { manager } = ctx;
  const schedules = manager.informer<ScheduleObject>(Resources.BackupSchedule);
  const backups = backupCache(manager);
  const reconciler = new BackupScheduleReconciler({
    client: ctx.client,
    schedules,
    backups,
    events: ctx.events,
    log: ctx.log.child({ controller: SCHEDULE_CONTROLLER }),
    clock: ctx.clock,
  });
  manager
    .addController({ name: SCHEDULE_CONTROLLER, for: schedules, reconcile: (key) => reconciler.reconcile(key) })
    .watches(backups, ownerByLabel(LABEL_SCHEDULE));
}
