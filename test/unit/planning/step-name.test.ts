import assert from "node:assert/strict";
import { stepName } from "../../../src/planning/index.js";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function assertUsable(name: string): void {
  assert.ok(name.length > 0 && name.length <= 63, `${name} is ${name.length} characters long`);
  assert.match(name, DNS1123_SUBDOMAIN);
  assert.match(name, LABEL_VALUE);
}

const longBackup = `nightly-${"b".repeat(55)}`; // 63 characters, the longest FederatedBackup name
const longNode = `worker-${"n".repeat(200)}.region-1.example.com`;

describe("stepName", () => {
  const readable: Array<[string, number, string, string]> = [
    ["nightly", 1, "worker-1", "nightly-r1-worker-1"],
    ["nightly", 2, "ip-10-0-0-1.ec2.internal", "nightly-r2-ip-10-0-0-1.ec2.internal"],
    ["b", 10, "n", "b-r10-n"],
    ["backup", 0, "0node", "backup-r0-0node"],
  ];
  for (const [backup, round, node, want] of readable) {
    it(`is ${want} when it fits`, () => {
      assert.equal(stepName(backup, round, node), want);
      assertUsable(want);
    });
  }

  it("keeps a name of exactly 63 characters as it is", () => {
    const node = "n".repeat(63 - "backup-r1-".length);
    assert.equal(stepName("backup", 1, node), `backup-r1-${node}`);
  });

  it("shortens and hashes a name of 64 characters", () => {
    const node = "n".repeat(64 - "backup-r1-".length);
    const name = stepName("backup", 1, node);
    assertUsable(name);
    assert.match(name, /^backup-r1-n+-[0-9a-f]{8}$/);
  });

  it("shortens long inputs to a usable name that keeps both parts recognisable", () => {
    const name = stepName(longBackup, 3, longNode);
    assertUsable(name);
    assert.equal(name.length, 63);
    assert.match(name, /^nightly-b+-r3-worker-n+-[0-9a-f]{8}$/);
  });

  it("gives a short part its full length and the long one the rest", () => {
    assert.match(stepName("nightly", 1, longNode), /^nightly-r1-worker-n+-[0-9a-f]{8}$/);
    assert.match(stepName(longBackup, 1, "w1"), /^nightly-b+-r1-w1-[0-9a-f]{8}$/);
  });

  it("is stable", () => {
    assert.equal(stepName(longBackup, 2, longNode), stepName(longBackup, 2, longNode));
  });

  it("differs for long inputs that differ only after the cut", () => {
    const a = stepName(longBackup, 1, `${longNode}-a`);
    const b = stepName(longBackup, 1, `${longNode}-b`);
    assert.notEqual(a, b);
    assert.equal(a.slice(0, -8), b.slice(0, -8)); // only the hash tells them apart
  });

  it("differs between rounds and between backups", () => {
    const names = new Set([
      stepName(longBackup, 1, longNode),
      stepName(longBackup, 2, longNode),
      stepName(`${longBackup.slice(0, -1)}c`, 1, longNode),
    ]);
    assert.equal(names.size, 3);
  });

  it("makes invalid characters valid and hashes, so altered inputs cannot collide", () => {
    const upper = stepName("Nightly", 1, "Worker_1");
    const lower = stepName("nightly", 1, "worker-1");
    assertUsable(upper);
    assert.match(upper, /^nightly-r1-worker-1-[0-9a-f]{8}$/);
    assert.notEqual(upper, lower);
  });

  const odd: Array<[string, string, string]> = [
    ["empty node", "nightly", ""],
    ["empty backup", "", "worker-1"],
    ["both empty", "", ""],
    ["only invalid characters", "___", "***"],
    ["dots and dashes at the edges", "-.backup.-", ".-node-."],
    ["consecutive dots", "a..b", "c...d"],
    ["non-ASCII", "sauvegarde-été", "nœud-1"],
  ];
  for (const [title, backup, node] of odd) {
    it(`yields a usable name for ${title}`, () => assertUsable(stepName(backup, 1, node)));
  }

  it("yields a usable name wherever the cut falls (dots and dashes next to it)", () => {
    const nodes = ["a.b-c.d-e.f-g.h", "x-y.z", "-.-.-", "node.example.com"].map((p) => p.repeat(20));
    for (let length = 1; length <= 80; length++) {
      for (const node of nodes) {
        const backup = "fb-a.b".repeat(20).slice(0, length);
        const name = stepName(backup, 7, node.slice(0, 40 + length));
        assertUsable(name);
      }
    }
  });

  it("handles large round numbers", () => {
    const name = stepName(longBackup, Number.MAX_SAFE_INTEGER, longNode);
    assertUsable(name);
    assert.ok(name.includes(`-r${Number.MAX_SAFE_INTEGER}-`), name);
  });

  const badRounds = [-1, 1.5, NaN, Infinity];
  for (const round of badRounds) {
    it(`rejects round ${round}`, () => assert.throws(() => stepName("b", round, "n"), RangeError));
  }
});
