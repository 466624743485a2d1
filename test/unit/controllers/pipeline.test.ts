import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import { buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import {
  cutterOf,
  EXITING_LIMIT,
  planPipeline,
  type PipelineStep,
} from "../../../src/controllers/federatedbackup/pipeline.js";
import { deriveStepPhase } from "../../../src/controllers/federatedbackup/steps.js";

const step = (name: string, over: Partial<PipelineStep> = {}): PipelineStep => ({
  name,
  started: false,
  finished: false,
  cutDone: false,
  ...over,
});
const ahead = { lookAhead: 2, maxExtractions: 2 };

describe("planPipeline", () => {
  it("strict (lookAhead 0): the first unfinished step alone cuts and runs", () => {
    const steps = [step("a", { started: true, finished: true, cutDone: true }), step("b"), step("c")];
    assert.deepEqual(planPipeline(steps, "a", { lookAhead: 0, maxExtractions: 2 }), { cutter: "b", start: ["b"] });
    // Its cut made, a strict step keeps the turn until it ends.
    steps[1] = step("b", { started: true, cutDone: true });
    assert.deepEqual(planPipeline(steps, "b", { lookAhead: 0, maxExtractions: 2 }), { cutter: "b", start: [] });
  });

  it("starts the cutter and lookAhead steps after it at once", () => {
    const steps = ["a", "b", "c", "d", "e"].map((n) => step(n));
    assert.deepEqual(planPipeline(steps, undefined, ahead), { cutter: "a", start: ["a", "b", "c"] });
  });

  it("keeps the turn on the step that has not made its cut, and starts nothing more", () => {
    const steps = [step("a", { started: true }), step("b", { started: true }), step("c", { started: true }), step("d")];
    assert.deepEqual(planPipeline(steps, "a", ahead), { cutter: "a", start: [] });
  });

  it("hands the turn on once the holder made its cut, and fills the look-ahead", () => {
    const steps = [
      step("a", { started: true, cutDone: true }),
      step("b", { started: true }),
      step("c", { started: true }),
      step("d"),
    ];
    assert.deepEqual(planPipeline(steps, "a", ahead), { cutter: "b", start: ["d"] });
  });

  it("holds the turn back while maxExtractions steps are extracting", () => {
    const steps = [
      step("a", { started: true, cutDone: true }),
      step("b", { started: true, cutDone: true }),
      step("c", { started: true }),
      step("d", { started: true }),
      step("e"),
    ];
    // Nobody gets the turn; c, next to cut, and the two after it may be waiting.
    assert.deepEqual(planPipeline(steps, "b", ahead), { start: ["e"] });
    assert.equal(cutterOf(steps, "b", 3), "c");
  });

  it("no longer counts a step whose agent reported its result as extracting (only its pod's exit is left)", () => {
    const steps = [
      step("a", { started: true, cutDone: true, reported: true }),
      step("b", { started: true, cutDone: true }),
      step("c", { started: true }),
      step("d", { started: true }),
    ];
    assert.equal(planPipeline(steps, "b", ahead).cutter, "c");
    steps[0] = step("a", { started: true, cutDone: true });
    assert.equal(planPipeline(steps, "b", ahead).cutter, undefined);
  });

  it("gives a finished step's turn to the next, whatever the order the steps ended in", () => {
    const steps = [
      step("a", { started: true, finished: true, cutDone: true }),
      step("b", { started: true }),
      step("c"),
    ];
    assert.deepEqual(planPipeline(steps, "a", ahead), { cutter: "b", start: ["c"] });
  });

  it("in a simulated run, never gives the turn to two steps that have not made their cut, and bounds the Jobs", () => {
    // Each tick: the plan is applied (Jobs start, the Leases name the cutter); then one agent acts at random:
    // the cutter makes its cut, an extracting step reports, or a reported step's Job ends.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    // The last settings have Jobs slow to end once their agents reported (as when the Job controller lags).
    const runs = [
      { settings: ahead, exitOdds: 1 },
      { settings: { lookAhead: 1, maxExtractions: 1 }, exitOdds: 1 },
      { settings: { lookAhead: 4, maxExtractions: 3 }, exitOdds: 1 },
      { settings: ahead, exitOdds: 0.05 },
    ];
    for (const { settings, exitOdds } of runs) {
      const steps = Array.from({ length: 30 }, (_, i) => step(`s${i}`));
      let holder: string | undefined;
      const cutOrder: string[] = [];
      for (let tick = 0; tick < 20_000 && steps.some((s) => !s.finished); tick++) {
        const plan = planPipeline(steps, holder, settings);
        for (const name of plan.start) steps.find((s) => s.name === name)!.started = true;
        if (plan.cutter) holder = plan.cutter;
        const cutting = steps.filter((s) => s.name === holder && s.started && !s.cutDone && !s.finished);
        assert.ok(cutting.length <= 1);
        const alive = steps.filter((s) => s.started && !s.finished).length;
        assert.ok(alive <= 1 + settings.lookAhead + settings.maxExtractions + EXITING_LIMIT, `${alive} Jobs at once`);
        const extracting = steps.filter((s) => s.started && !s.finished && s.cutDone && !s.reported);
        assert.ok(extracting.length <= settings.maxExtractions);
        const exiting = steps.filter((s) => s.started && !s.finished && s.reported);
        const draw = random();
        if (cutting[0] && draw < 0.4) {
          cutting[0].cutDone = true;
          cutOrder.push(cutting[0].name);
        } else if (extracting.length > 0 && draw < 0.7) {
          extracting[Math.floor(random() * extracting.length)]!.reported = true;
        } else if (exiting.length > 0 && random() < exitOdds) {
          exiting[Math.floor(random() * exiting.length)]!.finished = true;
        }
      }
      assert.ok(steps.every((s) => s.finished));
      assert.deepEqual(
        cutOrder,
        steps.map((s) => s.name),
      );
    }
  });
});

describe("deriveStepPhase: cutDone", () => {
  const b = {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
    spec: { location: { persistentVolumeClaim: { claimName: "backups" } } },
  } as FederatedBackup;
  const running = (cut?: string): NodeSnapshot => {
    const step = buildNodeSnapshot(b, 1, 1, "n1", []);
    step.status = { phase: "Running", ...(cut ? { cutCompletionTime: cut } : {}) };
    return step;
  };
  const job = { name: "j", complete: false, failed: false };
  const now = Date.parse("2026-11-25T12:00:00Z");

  it("is not done while the agent has not reported its cut, nor for a step not started", () => {
    assert.equal(deriveStepPhase({ step: running(), job }, now).cutDone, undefined);
    assert.equal(deriveStepPhase({ step: buildNodeSnapshot(b, 1, 1, "n1", []) }, now).cutDone, undefined);
  });

  it("is done once the agent reported cutCompletionTime, or its Job ended", () => {
    assert.equal(deriveStepPhase({ step: running("2026-11-25T11:59:59Z"), job }, now).cutDone, true);
    const ended = { ...job, complete: true, completionTime: "2026-11-25T11:59:59Z" };
    assert.equal(deriveStepPhase({ step: running(), job: ended }, now).cutDone, true);
    assert.equal(deriveStepPhase({ step: running(), job: { ...job, failed: true } }, now).cutDone, true);
  });
});
