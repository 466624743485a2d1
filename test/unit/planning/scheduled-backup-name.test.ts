import assert from "node:assert/strict";
import { compactUtc, scheduledBackupName } from "../../../src/planning/scheduled-backup-name.js";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe("scheduledBackupName", () => {
  const time = new Date("2026-03-29T01:30:05.250Z");

  it("is <schedule>-<yyyymmddhhmmss> in UTC", () => {
    assert.equal(compactUtc(time), "20260329013005");
    assert.equal(scheduledBackupName("nightly", time), "nightly-20260329013005");
  });

  it("is the same for the same schedule and time, and differs for another time", () => {
    assert.equal(scheduledBackupName("nightly", time), scheduledBackupName("nightly", new Date(time)));
    assert.notEqual(
      scheduledBackupName("nightly", time),
      scheduledBackupName("nightly", new Date("2026-03-29T01:30:15Z")),
    );
  });

  it("fits 63 characters for the longest schedule name, and keeps long names apart", () => {
    const a = `${"a".repeat(50)}-x${"b".repeat(11)}`;
    const b = `${"a".repeat(50)}-y${"b".repeat(11)}`;
    assert.equal(a.length, 63);
    const na = scheduledBackupName(a, time);
    const nb = scheduledBackupName(b, time);
    assert.ok(na.length <= 63, na);
    assert.match(na, DNS_SUBDOMAIN);
    assert.ok(na.endsWith("-20260329013005"));
    assert.notEqual(na, nb);
  });

  it("keeps names that fit exactly unchanged, and never ends a shortened part with '-'", () => {
    const fits = "s".repeat(48);
    assert.equal(scheduledBackupName(fits, time), `${fits}-20260329013005`);
    const dashy = `${"a".repeat(38)}--${"c".repeat(20)}`;
    const name = scheduledBackupName(dashy, time);
    assert.match(name, DNS_SUBDOMAIN);
    assert.ok(!name.includes("--"), name);
  });
});
