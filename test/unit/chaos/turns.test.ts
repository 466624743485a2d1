import assert from "node:assert/strict";
import {
  checkOneTurnAtATime,
  handOffsDuringExtraction,
  turnsOf,
  type LeaseState,
} from "../../chaos/invariants/turns.js";

const state = (revision: number, step: string | undefined, holder?: string, lease = "vol"): LeaseState => ({
  lease,
  revision: BigInt(revision),
  ...(step ? { step, holder: holder ?? `node-of-${step}` } : {}),
});

describe("chaos invariant: one turn at a time", () => {
  it("takes a turn from the Lease's first naming of the step to its cut, else its end", () => {
    const turns = turnsOf(
      [state(10, "s1"), state(12, "s1"), state(20, "s2"), state(30, undefined)],
      [
        { step: "s1", cutDoneRevision: 15n, finishedRevision: 40n },
        { step: "s2", finishedRevision: 25n },
      ],
    );
    assert.deepEqual(turns, [
      { lease: "vol", step: "s1", holder: "node-of-s1", from: 10n, to: 15n },
      { lease: "vol", step: "s2", holder: "node-of-s2", from: 20n, to: 25n },
    ]);
    assert.deepEqual(checkOneTurnAtATime(turns), []);
  });

  it("accepts a hand-off after the cut while the first step still extracts (pipelining)", () => {
    const turns = turnsOf(
      [state(10, "s1"), state(16, "s2")],
      [
        { step: "s1", cutDoneRevision: 15n, finishedRevision: 50n },
        { step: "s2", cutDoneRevision: 20n, finishedRevision: 60n },
      ],
    );
    assert.deepEqual(checkOneTurnAtATime(turns), []);
  });

  it("catches a step granted before the previous one cut, and one still holding at the end", () => {
    const early = turnsOf(
      [state(10, "s1"), state(14, "s2")],
      [
        { step: "s1", cutDoneRevision: 15n },
        { step: "s2", cutDoneRevision: 20n },
      ],
    );
    assert.equal(checkOneTurnAtATime(early).length, 1);
    const unfinished = turnsOf([state(10, "s1"), state(30, "s2")], [{ step: "s2", finishedRevision: 35n }]);
    assert.match(checkOneTurnAtATime(unfinished)[0]!.detail, /s2 \(node-of-s2\) granted at revision 30 before s1/);
  });

  it("ends a turn without a cut report when its Job ended, if the step's record of its end comes later", () => {
    const copy = turnsOf(
      [state(10, "s1"), state(21, "s2")],
      [
        // The Job ended at 20; the operator handed the turn on at 21 and recorded the step's end at 22.
        { step: "s1", jobEndedRevision: 20n, finishedRevision: 22n },
        { step: "s2", finishedRevision: 30n },
      ],
    );
    assert.deepEqual(checkOneTurnAtATime(copy), []);
    // A step the operator failed before its Job ended (its node lost): the record counts, as it did before.
    const lostNode = turnsOf(
      [state(10, "s1"), state(19, "s2")],
      [
        { step: "s1", jobEndedRevision: 20n, finishedRevision: 18n },
        { step: "s2", finishedRevision: 30n },
      ],
    );
    assert.deepEqual(checkOneTurnAtATime(lostNode), []);
    // Granted before either: an overlap.
    const late = turnsOf(
      [state(10, "s1"), state(19, "s2")],
      [
        { step: "s1", jobEndedRevision: 20n, finishedRevision: 22n },
        { step: "s2", finishedRevision: 30n },
      ],
    );
    assert.equal(checkOneTurnAtATime(late).length, 1);
  });

  it("counts the turns handed on while the previous step still extracted", () => {
    const ends = [
      { step: "s1", cutDoneRevision: 15n, finishedRevision: 50n },
      { step: "s2", cutDoneRevision: 20n, finishedRevision: 25n },
      { step: "s3", cutDoneRevision: 40n, finishedRevision: 45n },
    ];
    // s2 granted at 16 while s1 extracted (until 50); s3 at 30 after s2 finished, but s1 still extracted.
    const piped = turnsOf([state(10, "s1"), state(16, "s2"), state(30, "s3")], ends);
    assert.equal(handOffsDuringExtraction(piped, ends), 2);
    // One step after the other: each granted once the previous one finished.
    const strictEnds = [
      { step: "s1", finishedRevision: 50n },
      { step: "s2", finishedRevision: 60n },
    ];
    assert.equal(handOffsDuringExtraction(turnsOf([state(10, "s1"), state(51, "s2")], strictEnds), strictEnds), 0);
  });

  it("keeps different Leases apart", () => {
    const turns = turnsOf([state(10, "s1", "a", "vol-1"), state(11, "s2", "b", "vol-2")], []);
    assert.deepEqual(checkOneTurnAtATime(turns), []);
  });
});
