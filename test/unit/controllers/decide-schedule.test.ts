import assert from "node:assert/strict";
import type { BackupSchedule } from "../../../src/api/v1alpha1/index.js";
import {
  activeBackup,
  decideSchedule,
  type ScheduleAction,
  type ScheduleBackup,
} from "../../../src/controllers/backupschedule/decide.js";
import { scheduleBackupOf } from "../../../src/controllers/backupschedule/schedule-backups.js";

const CREATED = "2026-01-01T00:00:00Z";

function schedule(spec: Partial<BackupSchedule["spec"]> = {}, status?: BackupSchedule["status"]): BackupSchedule {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "BackupSchedule",
    metadata: { name: "nightly", namespace: "ns", generation: 3, creationTimestamp: CREATED },
    spec: {
      schedule: "*/10 * * * * *",
      timeZone: "UTC",
      template: { location: { persistentVolumeClaim: { claimName: "backups" } } },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

function backup(name: string, time: string, phase?: string, deleting = false): ScheduleBackup {
  return { name, scheduledTime: new Date(time), ...(phase ? { phase } : {}), deleting };
}

const of = <T extends ScheduleAction["type"]>(actions: ScheduleAction[], type: T) =>
  actions.filter((a): a is Extract<ScheduleAction, { type: T }> => a.type === type);

const ready = (d: ReturnType<typeof decideSchedule>) => d.status.conditions?.find((c) => c.type === "Ready");

describe("decideSchedule", () => {
  it("creates the backup of the due time, named after it, with the template as its spec", () => {
    const s = schedule();
    const d = decideSchedule({ schedule: s, backups: [], now: new Date("2026-01-01T00:00:10.300Z") });
    const [create] = of(d.actions, "CreateBackup");
    assert.ok(create);
    assert.equal(create.name, "nightly-20260101000010");
    assert.deepEqual(create.time, new Date("2026-01-01T00:00:10Z"));
    assert.deepEqual(create.spec, s.spec.template);
    assert.equal(d.status.lastScheduleTime, "2026-01-01T00:00:10Z");
    assert.equal(d.status.activeBackup, "nightly-20260101000010");
    assert.equal(d.status.nextScheduleTime, "2026-01-01T00:00:20Z");
    assert.equal(d.status.observedGeneration, 3);
    assert.equal(ready(d)?.reason, "Scheduled");
    assert.deepEqual(
      of(d.actions, "Event").map((e) => e.reason),
      ["Created"],
    );
    assert.ok(d.requeueAfterMs! > 9_000 && d.requeueAfterMs! <= 10_000, String(d.requeueAfterMs));
  });

  it("does nothing before the first time after its creation", () => {
    const d = decideSchedule({ schedule: schedule(), backups: [], now: new Date("2026-01-01T00:00:09Z") });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(d.status.lastScheduleTime, undefined);
  });

  it("finds the time it ran in its backups when the status write was lost: no second backup", () => {
    const backups = [backup("nightly-20260101000010", "2026-01-01T00:00:10Z", "Completed")];
    const d = decideSchedule({ schedule: schedule(), backups, now: new Date("2026-01-01T00:00:15Z") });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(d.status.lastScheduleTime, "2026-01-01T00:00:10Z");
    assert.deepEqual(d.status.lastSuccessfulBackup, { name: "nightly-20260101000010" });
  });

  it("skips a time while the previous backup runs (Forbid), reports it once, and does not retry it", () => {
    const running = [backup("nightly-20260101000010", "2026-01-01T00:00:10Z", "InProgress")];
    const status = { lastScheduleTime: "2026-01-01T00:00:10Z" };
    const d = decideSchedule({
      schedule: schedule({}, status),
      backups: running,
      now: new Date("2026-01-01T00:00:20.100Z"),
    });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(d.status.lastSkipped?.time, "2026-01-01T00:00:20Z");
    assert.equal(d.status.lastSkipped?.reason, "ConcurrentRunActive");
    assert.match(d.status.lastSkipped?.message ?? "", /nightly-20260101000010/);
    assert.equal(d.status.activeBackup, "nightly-20260101000010");
    assert.deepEqual(
      of(d.actions, "Event").map((e) => [e.kind, e.reason]),
      [["Warning", "Skipped"]],
    );

    // The next pass, with the backup finished: the skipped time is not run, and not reported again.
    const again = decideSchedule({
      schedule: schedule({}, d.status),
      backups: [backup("nightly-20260101000010", "2026-01-01T00:00:10Z", "Completed")],
      now: new Date("2026-01-01T00:00:25Z"),
    });
    assert.deepEqual(again.actions, []);
    assert.equal(again.status.activeBackup, undefined);
  });

  it("runs the latest missed time once after an outage, within startingDeadlineSeconds", () => {
    const s = schedule({ startingDeadlineSeconds: 30 }, { lastScheduleTime: "2026-01-01T00:00:10Z" });
    const d = decideSchedule({ schedule: s, backups: [], now: new Date("2026-01-01T01:00:05Z") });
    assert.deepEqual(
      of(d.actions, "CreateBackup").map((c) => c.name),
      ["nightly-20260101010000"],
    );
  });

  it("skips a missed time older than startingDeadlineSeconds with MissedDeadline", () => {
    const s = schedule(
      { schedule: "0 * * * *", startingDeadlineSeconds: 60 },
      { lastScheduleTime: "2026-01-01T00:00:00Z" },
    );
    const d = decideSchedule({ schedule: s, backups: [], now: new Date("2026-01-01T05:10:00Z") });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(d.status.lastSkipped?.reason, "MissedDeadline");
    assert.equal(d.status.lastSkipped?.time, "2026-01-01T05:00:00Z");
    assert.equal(d.status.nextScheduleTime, "2026-01-01T06:00:00Z");
  });

  it("starts nothing while suspended, and says so", () => {
    const d = decideSchedule({
      schedule: schedule({ suspend: true }),
      backups: [],
      now: new Date("2026-01-01T00:05:00Z"),
    });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(ready(d)?.status, "False");
    assert.equal(ready(d)?.reason, "Suspended");
    assert.equal(d.status.nextScheduleTime, undefined);
  });

  for (const [spec, reason] of [
    [{ schedule: "99 * * * *" }, "InvalidSchedule"],
    [{ timeZone: "Europe/Nowhere" }, "InvalidTimeZone"],
  ] as const) {
    it(`reports ${reason} and starts and deletes nothing`, () => {
      const backups = [backup("nightly-20251231000000", "2025-12-31T00:00:00Z", "Completed")];
      const s = schedule({ ...spec, retention: { keepLast: 1, maxAge: "1h" } });
      const d = decideSchedule({ schedule: s, backups, now: new Date("2026-01-02T00:00:00Z") });
      assert.deepEqual(d.actions, []);
      assert.equal(ready(d)?.reason, reason);
      assert.equal(d.status.nextScheduleTime, undefined);
    });
  }

  it("a refused creator: nothing is created, Ready says why, the time stays due", () => {
    const refusal = { reason: "NamespaceNotPermitted", message: "alice may not freeze VMs in namespace other" };
    const d = decideSchedule({ schedule: schedule(), backups: [], now: new Date("2026-01-01T00:00:10Z"), refusal });
    assert.deepEqual(of(d.actions, "CreateBackup"), []);
    assert.equal(ready(d)?.reason, "NamespaceNotPermitted");
    assert.equal(d.status.lastScheduleTime, undefined);
    assert.equal(d.status.lastSkipped, undefined);
  });

  it("deletes what retention lets go, each with an Event, and leaves backups being deleted alone", () => {
    const backups = [
      backup("nightly-20260101000010", "2026-01-01T00:00:10Z", "Completed", true),
      backup("nightly-20260101000020", "2026-01-01T00:00:20Z", "Completed"),
      backup("nightly-20260101000030", "2026-01-01T00:00:30Z", "Completed"),
      backup("nightly-20260101000040", "2026-01-01T00:00:40Z", "Completed"),
    ];
    const s = schedule({ retention: { keepLast: 2 } }, { lastScheduleTime: "2026-01-01T00:00:40Z" });
    const d = decideSchedule({ schedule: s, backups, now: new Date("2026-01-01T00:00:45Z") });
    assert.deepEqual(
      of(d.actions, "DeleteBackup").map((a) => [a.name, a.reason]),
      [["nightly-20260101000020", "NotKept"]],
    );
    assert.deepEqual(
      of(d.actions, "Event").map((e) => e.reason),
      ["Pruned"],
    );
    assert.deepEqual(d.status.lastSuccessfulBackup, { name: "nightly-20260101000040" });
  });

  it("keeps the transition time of a Ready that did not change", () => {
    const first = decideSchedule({ schedule: schedule(), backups: [], now: new Date("2026-01-01T00:00:05Z") });
    const second = decideSchedule({
      schedule: schedule({}, first.status),
      backups: [],
      now: new Date("2026-01-01T00:00:07Z"),
    });
    assert.equal(ready(second)?.lastTransitionTime, ready(first)?.lastTransitionTime);
  });
});

describe("activeBackup", () => {
  it("is the newest unfinished backup not being deleted", () => {
    assert.equal(
      activeBackup([
        backup("a", "2026-01-01T00:00:10Z", "InProgress"),
        backup("b", "2026-01-01T00:00:20Z"),
        backup("c", "2026-01-01T00:00:30Z", "New", true),
        backup("d", "2026-01-01T00:00:40Z", "Failed"),
      ])?.name,
      "b",
    );
  });
});

describe("scheduleBackupOf", () => {
  const fb = (name: string, annotations?: Record<string, string>) =>
    ({
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "FederatedBackup",
      metadata: { name, annotations },
      spec: {},
    }) as never;

  it("reads the scheduled time of a backup the schedule named", () => {
    const seen = scheduleBackupOf(
      "nightly",
      fb("nightly-20260101000010", { "fedbackup.io/scheduled-time": "2026-01-01T00:00:10Z" }),
    );
    assert.deepEqual(seen?.scheduledTime, new Date("2026-01-01T00:00:10Z"));
  });

  it("ignores a backup synced from a location, even one carrying the schedule's label, name and time", () => {
    const synced = {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "FederatedBackup",
      metadata: {
        name: "nightly-20260101000010",
        labels: { "fedbackup.io/schedule": "nightly", "fedbackup.io/synced": "true" },
        annotations: { "fedbackup.io/scheduled-time": "2026-01-01T00:00:10Z" },
      },
      spec: {},
    } as never;
    assert.equal(scheduleBackupOf("nightly", synced), undefined);
  });

  it("ignores a labeled backup without the annotation, or whose name is not the schedule's for its time", () => {
    assert.equal(scheduleBackupOf("nightly", fb("nightly-20260101000010")), undefined);
    assert.equal(
      scheduleBackupOf("nightly", fb("nightly-20260101000010", { "fedbackup.io/scheduled-time": "soon" })),
      undefined,
    );
    assert.equal(
      scheduleBackupOf("nightly", fb("precious", { "fedbackup.io/scheduled-time": "2026-01-01T00:00:10Z" })),
      undefined,
    );
  });
});
