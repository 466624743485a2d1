import assert from "node:assert/strict";
import {
  dueTime,
  isKnownTimeZone,
  isScheduleProblem,
  latestOf,
  parseSchedule,
  type CronTimes,
} from "../../../src/planning/schedule-times.js";

const t = (iso: string) => new Date(iso);

function times(expression: string, timeZone = "UTC"): CronTimes {
  const parsed = parseSchedule(expression, timeZone);
  assert.ok(!isScheduleProblem(parsed), `${expression} in ${timeZone}: ${JSON.stringify(parsed)}`);
  return parsed;
}

describe("parseSchedule", () => {
  it("reads 5 fields at minute resolution", () => {
    const cron = times("*/15 * * * *");
    assert.deepEqual(cron.next(t("2026-01-01T00:07:30Z")), t("2026-01-01T00:15:00Z"));
  });

  it("reads 6 fields with seconds first", () => {
    const cron = times("*/10 * * * * *");
    assert.deepEqual(cron.next(t("2026-01-01T00:00:05Z")), t("2026-01-01T00:00:10Z"));
    assert.deepEqual(cron.next(t("2026-01-01T00:00:10Z")), t("2026-01-01T00:00:20Z"), "strictly after");
  });

  it("reads nicknames", () => {
    assert.deepEqual(times("@daily").next(t("2026-01-01T10:00:00Z")), t("2026-01-02T00:00:00Z"));
  });

  it("reads the expression in the time zone", () => {
    // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    const cron = times("0 2 * * *", "Europe/Berlin");
    assert.deepEqual(cron.next(t("2026-01-10T12:00:00Z")), t("2026-01-11T01:00:00Z"));
    assert.deepEqual(cron.next(t("2026-07-10T12:00:00Z")), t("2026-07-11T00:00:00Z"));
  });

  it("runs a time that does not exist on the day clocks go forward once, later that day", () => {
    // 02:30 does not exist in Berlin on 2026-03-29 (02:00 -> 03:00).
    const cron = times("30 2 * * *", "Europe/Berlin");
    const run = cron.next(t("2026-03-28T12:00:00Z"));
    assert.ok(run && run.toISOString().startsWith("2026-03-29"), String(run));
    assert.ok(cron.next(run)!.toISOString().startsWith("2026-03-30"));
  });

  it("finds the latest time at or before a moment, that moment included", () => {
    const cron = times("*/10 * * * * *");
    assert.deepEqual(cron.latestAtOrBefore(t("2026-01-01T00:00:30Z")), t("2026-01-01T00:00:30Z"));
    assert.deepEqual(cron.latestAtOrBefore(t("2026-01-01T00:00:30.500Z")), t("2026-01-01T00:00:30Z"));
    assert.deepEqual(cron.latestAtOrBefore(t("2026-01-01T00:00:39.999Z")), t("2026-01-01T00:00:30Z"));
  });

  const invalid: Array<[string, string, string]> = [
    ["61 * * * *", "UTC", "InvalidSchedule"],
    ["* * * *", "UTC", "InvalidSchedule"],
    ["0 0 0 * * * 2030", "UTC", "InvalidSchedule"],
    ["not a schedule at all", "UTC", "InvalidSchedule"],
    ["0 2 * * *", "Mars/Olympus_Mons", "InvalidTimeZone"],
    ["0 2 * * *", "", "InvalidTimeZone"],
  ];
  for (const [expression, zone, reason] of invalid) {
    it(`refuses ${JSON.stringify(expression)} in ${JSON.stringify(zone)} with ${reason}`, () => {
      const parsed = parseSchedule(expression, zone);
      assert.ok(isScheduleProblem(parsed));
      assert.equal(parsed.reason, reason);
      assert.match(parsed.message, reason === "InvalidTimeZone" ? /spec\.timeZone/ : /spec\.schedule/);
    });
  }

  it("knows IANA zones and not made-up ones", () => {
    assert.ok(isKnownTimeZone("UTC"));
    assert.ok(isKnownTimeZone("America/New_York"));
    assert.ok(!isKnownTimeZone("Europe/Atlantis"));
  });
});

describe("dueTime", () => {
  const every10s = times("*/10 * * * * *");

  it("nothing is due before the first time after what was handled", () => {
    assert.equal(
      dueTime({ times: every10s, now: t("2026-01-01T00:00:09Z"), handledUntil: t("2026-01-01T00:00:01Z") }),
      undefined,
    );
  });

  it("the time that came is due, on time", () => {
    assert.deepEqual(
      dueTime({ times: every10s, now: t("2026-01-01T00:00:10.200Z"), handledUntil: t("2026-01-01T00:00:01Z") }),
      { time: t("2026-01-01T00:00:10Z"), late: false },
    );
  });

  it("a time already handled is not due again", () => {
    assert.equal(
      dueTime({ times: every10s, now: t("2026-01-01T00:00:15Z"), handledUntil: t("2026-01-01T00:00:10Z") }),
      undefined,
    );
  });

  it("after an outage only the latest missed time is due", () => {
    assert.deepEqual(
      dueTime({ times: every10s, now: t("2026-01-01T01:00:05Z"), handledUntil: t("2026-01-01T00:00:10Z") }),
      { time: t("2026-01-01T01:00:00Z"), late: false },
    );
  });

  it("is late when older than startingDeadlineSeconds, and on time at exactly the deadline", () => {
    const hourly = times("0 * * * *");
    const base = { times: hourly, handledUntil: t("2026-01-01T00:00:00Z"), startingDeadlineSeconds: 60 };
    assert.deepEqual(dueTime({ ...base, now: t("2026-01-01T05:01:00Z") }), {
      time: t("2026-01-01T05:00:00Z"),
      late: false,
    });
    assert.deepEqual(dueTime({ ...base, now: t("2026-01-01T05:01:01Z") }), {
      time: t("2026-01-01T05:00:00Z"),
      late: true,
    });
  });

  it("is never late without a deadline", () => {
    const hourly = times("0 * * * *");
    assert.deepEqual(
      dueTime({ times: hourly, now: t("2026-01-03T05:59:00Z"), handledUntil: t("2026-01-01T00:00:00Z") }),
      { time: t("2026-01-03T05:00:00Z"), late: false },
    );
  });
});

describe("latestOf", () => {
  it("ignores undefined and picks the latest", () => {
    assert.equal(latestOf(), undefined);
    assert.deepEqual(
      latestOf(undefined, t("2026-01-02T00:00:00Z"), t("2026-01-01T00:00:00Z")),
      t("2026-01-02T00:00:00Z"),
    );
  });
});
