import assert from "node:assert/strict";
import {
  backupsToPrune,
  isoWeek,
  keptByRules,
  periodKey,
  type RetentionPhase,
  type ScheduledBackup,
} from "../../../src/planning/retention.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function b(name: string, iso: string, phase: RetentionPhase = "Completed"): ScheduledBackup {
  return { name, scheduledTime: new Date(iso), phase };
}

const names = (prunes: Array<{ name: string }>) => prunes.map((p) => p.name);

describe("retention", () => {
  const now = new Date("2026-06-30T12:00:00Z");

  it("keepLast keeps the newest Completed backups and deletes the older ones, oldest first", () => {
    const backups = [
      b("b1", "2026-06-30T08:00:00Z"),
      b("b4", "2026-06-30T11:00:00Z"),
      b("b2", "2026-06-30T09:00:00Z"),
      b("b3", "2026-06-30T10:00:00Z"),
    ];
    const prunes = backupsToPrune(backups, { keepLast: 2 }, now, "UTC");
    assert.deepEqual(prunes, [
      { name: "b1", reason: "NotKept" },
      { name: "b2", reason: "NotKept" },
    ]);
  });

  it("never deletes a running backup, and a running one does not count for keepLast", () => {
    const backups = [
      b("b1", "2026-06-30T08:00:00Z"),
      b("b2", "2026-06-30T09:00:00Z"),
      b("b3", "2026-06-30T10:00:00Z", "Running"),
    ];
    assert.deepEqual(backupsToPrune(backups, { keepLast: 1 }, now, "UTC"), [{ name: "b1", reason: "NotKept" }]);
    assert.deepEqual(backupsToPrune([b("old", "2026-01-01T00:00:00Z", "Running")], { maxAgeMs: HOUR }, now, "UTC"), []);
  });

  it("PartiallyFailed and Failed are never kept by a rule: deleted once older than the oldest kept backup", () => {
    const backups = [
      b("f0", "2026-06-30T07:00:00Z", "Failed"),
      b("s1", "2026-06-30T08:00:00Z"),
      b("p1", "2026-06-30T09:00:00Z", "PartiallyFailed"),
      b("s2", "2026-06-30T10:00:00Z"),
      b("f2", "2026-06-30T11:00:00Z", "Failed"),
    ];
    // keepLast 2 keeps s1 and s2: f0 is older than both; p1 and f2 are not.
    assert.deepEqual(backupsToPrune(backups, { keepLast: 2 }, now, "UTC"), [{ name: "f0", reason: "Superseded" }]);
    // keepLast 1 keeps s2 only: f0, s1 and p1 go.
    assert.deepEqual(backupsToPrune(backups, { keepLast: 1 }, now, "UTC"), [
      { name: "f0", reason: "Superseded" },
      { name: "s1", reason: "NotKept" },
      { name: "p1", reason: "Superseded" },
    ]);
  });

  it("failures alone are kept: without a Completed backup nothing is older than a kept one", () => {
    const backups = [b("f1", "2026-06-30T07:00:00Z", "Failed"), b("f2", "2026-06-30T08:00:00Z", "PartiallyFailed")];
    assert.deepEqual(backupsToPrune(backups, { keepLast: 1 }, now, "UTC"), []);
  });

  it("keepDaily keeps the newest backup of each of the newest days that have one", () => {
    const backups = [
      b("d1-a", "2026-06-27T01:00:00Z"),
      b("d1-b", "2026-06-27T22:00:00Z"),
      b("d2-a", "2026-06-28T03:00:00Z"),
      b("d3-a", "2026-06-30T01:00:00Z"),
      b("d3-b", "2026-06-30T05:00:00Z"),
    ];
    assert.deepEqual([...keptByRules(backups, { keepDaily: 2 }, "UTC")].sort(), ["d2-a", "d3-b"]);
    assert.deepEqual(names(backupsToPrune(backups, { keepDaily: 3 }, now, "UTC")), ["d1-a", "d3-a"]);
  });

  it("counts days in the schedule's time zone", () => {
    // 22:30 UTC on the 27th is the 28th in Tokyo (UTC+9): in Tokyo both are on the 28th.
    const backups = [b("late", "2026-06-27T22:30:00Z"), b("next", "2026-06-28T02:00:00Z")];
    assert.deepEqual([...keptByRules(backups, { keepDaily: 2 }, "UTC")].sort(), ["late", "next"]);
    assert.deepEqual([...keptByRules(backups, { keepDaily: 2 }, "Asia/Tokyo")], ["next"]);
  });

  it("keepWeekly uses ISO weeks (Monday to Sunday) and keepMonthly calendar months", () => {
    const backups = [
      b("sun", "2026-06-28T10:00:00Z"), // Sunday, ISO week 26
      b("mon", "2026-06-29T10:00:00Z"), // Monday, ISO week 27
      b("may", "2026-05-15T10:00:00Z"),
      b("apr", "2026-04-15T10:00:00Z"),
    ];
    assert.deepEqual([...keptByRules(backups, { keepWeekly: 2 }, "UTC")].sort(), ["mon", "sun"]);
    assert.deepEqual([...keptByRules(backups, { keepMonthly: 2 }, "UTC")].sort(), ["may", "mon"]);
    assert.deepEqual([...keptByRules(backups, { keepLast: 1, keepMonthly: 3 }, "UTC")].sort(), ["apr", "may", "mon"]);
  });

  it("with no keep rule keeps every Completed backup", () => {
    const backups = [b("a", "2026-06-01T00:00:00Z"), b("b", "2026-06-02T00:00:00Z")];
    assert.deepEqual(backupsToPrune(backups, {}, now, "UTC"), []);
  });

  it("maxAge deletes older backups whatever the rules say, except the newest Completed one", () => {
    const backups = [
      b("old-ok", new Date(now.getTime() - 3 * DAY).toISOString()),
      b("old-failed", new Date(now.getTime() - 2 * DAY).toISOString(), "Failed"),
      b("young", new Date(now.getTime() - HOUR).toISOString()),
    ];
    assert.deepEqual(backupsToPrune(backups, { keepLast: 10, maxAgeMs: DAY }, now, "UTC"), [
      { name: "old-ok", reason: "MaxAge" },
      { name: "old-failed", reason: "MaxAge" },
    ]);
    // Without a young Completed backup the newest Completed stays, however old.
    const stale = backups.filter((x) => x.name !== "young");
    assert.deepEqual(backupsToPrune(stale, { maxAgeMs: DAY }, now, "UTC"), [{ name: "old-failed", reason: "MaxAge" }]);
  });

  it("does not depend on the order of its input", () => {
    const backups = [b("x", "2026-06-30T08:00:00Z"), b("y", "2026-06-30T08:00:00Z"), b("z", "2026-06-30T09:00:00Z")];
    const forward = backupsToPrune(backups, { keepLast: 2 }, now, "UTC");
    assert.deepEqual(backupsToPrune([...backups].reverse(), { keepLast: 2 }, now, "UTC"), forward);
    assert.equal(forward.length, 1);
  });
});

describe("isoWeek and periodKey", () => {
  const cases: Array<[string, number, number]> = [
    ["2026-01-01", 2026, 1], // Thursday
    ["2027-01-01", 2026, 53], // Friday: the last week of 2026
    ["2024-12-30", 2025, 1], // Monday of the week holding 2025-01-02
    ["2026-06-28", 2026, 26],
    ["2026-06-29", 2026, 27],
  ];
  for (const [date, year, week] of cases) {
    it(`${date} is ${year}-W${week}`, () => {
      const [y, m, d] = date.split("-").map(Number) as [number, number, number];
      assert.deepEqual(isoWeek({ year: y, month: m, day: d }), { year, week });
    });
  }

  it("puts a time in the period of its local date", () => {
    const time = new Date("2026-06-30T23:30:00Z");
    assert.equal(periodKey(time, "day", "UTC"), "2026-6-30");
    assert.equal(periodKey(time, "day", "Europe/Berlin"), "2026-7-1");
    assert.equal(periodKey(time, "month", "Europe/Berlin"), "2026-7");
    assert.equal(periodKey(time, "month", "America/Los_Angeles"), "2026-6");
  });
});
