import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { QuiesceOptions, VmFreezeReport } from "../../../src/agent/quiesce.js";
import { FreezeError, unfreezeTimeoutSeconds, withFrozen } from "../../../src/agent/quiesce.js";
import type { VmRef } from "../../../src/agent/types.js";
import { RecordingFreezer, makeTempDir, realClock, runFixture, sleep, waitFor } from "./helpers.js";

const a: VmRef = { namespace: "ns", name: "a" };
const b: VmRef = { namespace: "ns", name: "b" };

function options(overrides: Partial<QuiesceOptions> = {}): QuiesceOptions {
  return {
    quiesce: "GuestAgent",
    freezeTimeoutMs: 1000,
    maxFreezeMs: 5000,
    clock: realClock,
    signals: [],
    ...overrides,
  };
}

function byName(reports: VmFreezeReport[], vm: VmRef): VmFreezeReport {
  const report = reports.find((r) => r.vm.name === vm.name);
  assert.ok(report, `no report for ${vm.name}`);
  return report;
}

describe("agent/quiesce withFrozen", function () {
  it("freezes the VMs, runs the body while they are frozen, then thaws every one", async () => {
    const freezer = new RecordingFreezer();
    let seenInBody: string[] = [];
    const { value, reports } = await withFrozen([a, b], freezer, options(), async (session) => {
      seenInBody = [...freezer.log];
      await sleep(20);
      return session.vms.map((vm) => vm.name);
    });
    assert.deepEqual(value, ["a", "b"]);
    assert.deepEqual(seenInBody, ["freeze ns/a", "freeze ns/b"]);
    assert.deepEqual(freezer.log.slice(2).sort(), ["unfreeze ns/a", "unfreeze ns/b"]);
    for (const vm of [a, b]) {
      const report = byName(reports, vm);
      assert.ok(report.captured);
      assert.equal(report.indication, "GuestAgent");
      assert.equal(report.message, undefined);
      assert.ok(report.freeze.windowMs >= 15 && report.freeze.windowMs < 2000, `window ${report.freeze.windowMs}`);
    }
    // KubeVirt's own safety thaw must come after our budget, never before.
    assert.ok(
      freezer.events.every((e) => e.op !== "freeze" || e.unfreezeTimeoutSeconds === unfreezeTimeoutSeconds(5000)),
    );
    assert.ok(unfreezeTimeoutSeconds(5000) * 1000 > 5000);
  });

  it("thaws every VM when the body throws, and rethrows", async () => {
    const freezer = new RecordingFreezer();
    await assert.rejects(
      withFrozen([a, b], freezer, options(), () => Promise.reject(new Error("clone failed"))),
      /clone failed/,
    );
    freezer.assertAllThawed();
    assert.equal(freezer.events.filter((e) => e.op === "unfreeze").length, 2);
  });

  it("captures a VM whose freeze times out as QuiesceTimeout, and unfreezes it again when the late freeze lands", async () => {
    const freezer = new RecordingFreezer();
    freezer.onFreeze = (vm) => (vm.name === "a" ? sleep(600) : Promise.resolve());
    let bodyRanAt = 0;
    const started = performance.now();
    // The freeze of a returns after 600 ms, past freezeTimeout (400 ms) but within the time the thaw waits
    // for it (freezeTimeout again); 200 ms either side for a loaded machine's timers.
    const { reports } = await withFrozen([a, b], freezer, options({ freezeTimeoutMs: 400 }), async (session) => {
      bodyRanAt = performance.now() - started;
      assert.deepEqual(
        session.vms.map((vm) => vm.name),
        ["a", "b"],
      );
      return Promise.resolve();
    });
    assert.ok(bodyRanAt < 590, `the body waited for the slow freeze (${bodyRanAt} ms)`);
    const ra = byName(reports, a);
    assert.ok(ra.captured);
    assert.equal(ra.indication, "QuiesceTimeout");
    assert.match(ra.message ?? "", /did not freeze within 400 ms/);
    // unfreeze right away, then again after the freeze call finally returned.
    const aEvents = freezer.events.filter((e) => e.vm === "ns/a").map((e) => e.op);
    assert.deepEqual(aEvents, ["freeze", "unfreeze", "unfreeze"]);
    const lateUnfreeze = freezer.events.filter((e) => e.vm === "ns/a")[2];
    assert.ok(lateUnfreeze && lateUnfreeze.at - started >= 595, "second unfreeze came before the late freeze");
    freezer.assertAllThawed();
    const rb = byName(reports, b);
    assert.ok(rb.captured);
    assert.equal(rb.indication, "GuestAgent");
  });

  it("maps freeze errors: NoGuestAgent and other failures are captured unfrozen, NotRunning and Migrating are not captured", async () => {
    const c: VmRef = { namespace: "ns", name: "c" };
    const d: VmRef = { namespace: "ns", name: "d" };
    const e: VmRef = { namespace: "ns", name: "e" };
    const freezer = new RecordingFreezer();
    freezer.onFreeze = (vm) => {
      switch (vm.name) {
        case "a":
          return Promise.reject(new FreezeError("NoGuestAgent", "guest agent not connected"));
        case "b":
          return Promise.reject(new FreezeError("NotRunning", "vmi is not running"));
        case "c":
          return Promise.reject(new FreezeError("Migrating", "vmi is migrating"));
        case "d":
          return Promise.reject(new Error("connection reset"));
        default:
          return Promise.reject(new FreezeError("Timeout", "guest agent timed out"));
      }
    };
    let inBody: string[] = [];
    const { reports } = await withFrozen([a, b, c, d, e], freezer, options(), (session) => {
      inBody = session.vms.map((vm) => vm.name);
      return Promise.resolve();
    });
    assert.deepEqual(inBody, ["a", "d", "e"]);
    const expectations: [VmRef, string][] = [
      [a, "captured NoGuestAgent"],
      [b, "not captured NotRunning"],
      [c, "not captured Migrated"],
      [d, "captured FreezeFailed"],
      [e, "captured QuiesceTimeout"],
    ];
    for (const [vm, expected] of expectations) {
      const r = byName(reports, vm);
      assert.equal(r.captured ? `captured ${r.indication}` : `not captured ${r.reason}`, expected);
      assert.ok(r.message && r.message.length > 10, `no message for ${vm.name}`);
    }
    // A failed or timed-out freeze may have frozen something: those are unfrozen. The others were not frozen.
    assert.deepEqual(
      freezer.events
        .filter((ev) => ev.op === "unfreeze")
        .map((ev) => ev.vm)
        .sort(),
      ["ns/d", "ns/e"],
    );
  });

  it("thaws at maxFreeze while the capture goes on, and marks the capture FreezeBudgetExceeded", async () => {
    const freezer = new RecordingFreezer();
    let unfrozenDuringBody = false;
    const { reports } = await withFrozen([a], freezer, options({ freezeTimeoutMs: 30, maxFreezeMs: 60 }), async () => {
      await sleep(400);
      unfrozenDuringBody = freezer.log.includes("unfreeze ns/a");
    });
    assert.ok(unfrozenDuringBody, "the guest stayed frozen past maxFreeze");
    const r = byName(reports, a);
    assert.ok(r.captured);
    assert.equal(r.indication, "FreezeBudgetExceeded");
    assert.ok(r.freeze.windowMs >= 55 && r.freeze.windowMs < 390, `window ${r.freeze.windowMs}`);
    assert.equal(freezer.log.filter((l) => l === "unfreeze ns/a").length, 1);
  });

  it("checks right before freezing that each VM is active here, and never freezes the others", async () => {
    const freezer = new RecordingFreezer();
    const calls: string[] = [];
    const { reports } = await withFrozen(
      [a, b],
      freezer,
      options({
        isActiveOnNode: (vm) => {
          calls.push(`check ${vm.name}`);
          return Promise.resolve(
            vm.name === "a" ? { active: true } : { active: false, reason: "Migrated", message: "now on node-2" },
          );
        },
      }),
      () => Promise.resolve(),
    );
    assert.deepEqual(calls.sort(), ["check a", "check b"]);
    assert.deepEqual(freezer.log, ["freeze ns/a", "unfreeze ns/a"]);
    assert.deepEqual(byName(reports, b), { vm: b, captured: false, reason: "Migrated", message: "now on node-2" });
  });

  it("bounds the activity check like a freeze and reports a VM it could not check", async () => {
    const freezer = new RecordingFreezer();
    const { reports } = await withFrozen(
      [a, b],
      freezer,
      options({
        freezeTimeoutMs: 50,
        isActiveOnNode: (vm) =>
          vm.name === "a" ? new Promise(() => {}) : Promise.reject(new Error("apiserver: connection refused")),
      }),
      () => Promise.resolve(),
    );
    assert.deepEqual(freezer.log, []);
    assert.deepEqual(
      reports.map((r) => (r.captured ? "captured" : `${r.reason}: ${r.message}`)),
      [
        "CaptureFailed: could not check that it runs on this node: no answer within 50 ms",
        "CaptureFailed: could not check that it runs on this node: apiserver: connection refused",
      ],
    );
  });

  it("does not freeze with quiesce None", async () => {
    const freezer = new RecordingFreezer();
    const { reports } = await withFrozen([a], freezer, options({ quiesce: "None" }), () => Promise.resolve());
    assert.deepEqual(freezer.log, []);
    const r = byName(reports, a);
    assert.ok(r.captured);
    assert.equal(r.indication, "NotQuiesced");
    assert.deepEqual(r.freeze, { startedAt: null, endedAt: null, windowMs: 0 });
  });

  it("retries a failing unfreeze", async () => {
    const freezer = new RecordingFreezer();
    let failures = 1;
    freezer.onUnfreeze = () =>
      failures-- > 0 ? Promise.reject(new Error("apiserver unavailable")) : Promise.resolve();
    const { reports } = await withFrozen([a], freezer, options(), () => Promise.resolve());
    assert.deepEqual(freezer.log, ["freeze ns/a", "unfreeze ns/a", "unfreeze ns/a"]);
    const r = byName(reports, a);
    assert.ok(r.captured);
    assert.equal(r.thawError, undefined);
  });

  describe("termination signals (child process)", function () {
    let dir: string;
    let cleanup: () => Promise<void>;
    before(() => ({ dir, cleanup } = makeTempDir("signal")));
    after(() => cleanup());

    for (const phase of ["body", "freezing"] as const) {
      it(`on SIGTERM during the ${phase === "body" ? "capture" : "freeze calls"}, thaws every VM and dies of SIGTERM`, async function () {
        this.timeout(20_000);
        const events = join(dir, `events-${phase}.log`);
        const child = runFixture("freeze-child.ts", [events, phase]);
        const ready = phase === "body" ? "body started" : "freeze ns/b";
        await waitFor(
          async () => (await readFile(events, "utf8").catch(() => "")).includes(ready),
          15_000,
          `the child to reach "${ready}"`,
        );
        child.kill("SIGTERM");
        const exit = await child.exited;
        assert.equal(exit.signal, "SIGTERM", `child exited with code ${exit.code}: ${exit.stderr}`);
        const lines = (await readFile(events, "utf8")).trim().split("\n");
        const freezer = new RecordingFreezer();
        for (const line of lines) {
          const [op, vm] = line.split(" ");
          if (op === "freeze" || op === "unfreeze") freezer.events.push({ op, vm: vm ?? "", at: 0 });
        }
        assert.ok(
          freezer.events.some((e) => e.op === "freeze"),
          lines.join("; "),
        );
        freezer.assertAllThawed();
        assert.ok(!lines.includes("body finished"), "the body should have been cut short");
      });
    }
  });
});
