import assert from "node:assert/strict";
import type { FederatedBackupStatus } from "../../../src/api/v1alpha1/index.js";
import {
  deferredProgressWrite,
  STATUS_WRITE_INTERVAL_MS,
  statusOutline,
  statusWriteDelay,
} from "../../../src/controllers/federatedbackup/status-pace.js";

const running: FederatedBackupStatus = {
  phase: "InProgress",
  startTime: "2026-11-25T01:00:00Z",
  coordinatingNode: "node-1",
  conditions: [
    {
      type: "Progressing",
      status: "True",
      reason: "NodeInProgress",
      message: "round 1, node node-1 (1/1000) started",
      lastTransitionTime: "2026-11-25T01:00:00Z",
    },
  ],
  progress: { nodes: "0/1000", nodesTotal: 1000, nodesCompleted: 0, nodesFailed: 0, round: 1 },
  nodes: [{ name: "node-1", round: 1, order: 1, phase: "Running" }],
};

/** The same run one node further: only progress changed. */
const oneFurther: FederatedBackupStatus = {
  ...running,
  coordinatingNode: "node-2",
  conditions: [{ ...running.conditions![0]!, message: "round 1, node node-2 (2/1000) started" }],
  progress: { ...running.progress, nodes: "1/1000", nodesCompleted: 1 },
  nodes: [
    { name: "node-1", round: 1, order: 1, phase: "Succeeded" },
    { name: "node-2", round: 1, order: 2, phase: "Running" },
  ],
};

describe("FederatedBackup status pace", () => {
  const now = 1_000_000;

  it("writes nothing when nothing changed", () => {
    assert.equal(statusWriteDelay(running, structuredClone(running), now - 10, now), undefined);
  });

  it("holds a change of progress alone until a second after the previous write", () => {
    assert.equal(statusWriteDelay(running, oneFurther, now - 300, now), STATUS_WRITE_INTERVAL_MS - 300);
    assert.equal(statusWriteDelay(running, oneFurther, now - STATUS_WRITE_INTERVAL_MS, now), 0);
    assert.equal(statusWriteDelay(running, oneFurther, now - 5_000, now), 0);
  });

  it("writes progress at once when no write is known (a restarted operator)", () => {
    assert.equal(statusWriteDelay(running, oneFurther, undefined, now), 0);
  });

  it("writes at once what readers act on: the phase, the round, a condition's state or reason, the finish", () => {
    const changes: Array<[string, FederatedBackupStatus]> = [
      ["phase", { ...oneFurther, phase: "Verifying" }],
      ["round", { ...oneFurther, progress: { ...oneFurther.progress, round: 2 } }],
      ["steps planned", { ...oneFurther, progress: { ...oneFurther.progress, nodesTotal: 1001 } }],
      [
        "condition reason",
        { ...oneFurther, conditions: [{ ...oneFurther.conditions![0]!, reason: "WaitingForVolumeLease" }] },
      ],
      [
        "completion",
        { ...oneFurther, phase: "Completed", completionTime: "2026-11-25T01:10:00Z", coordinatingNode: undefined },
      ],
    ];
    for (const [what, next] of changes) assert.equal(statusWriteDelay(running, next, now - 10, now), 0, what);
  });

  it("writes the first status at once", () => {
    assert.equal(statusWriteDelay(undefined, running, now - 10, now), 0);
  });

  describe("a pass within the interval (the progress is not even built)", () => {
    const outlineOf = (status: FederatedBackupStatus) => () => statusOutline(status);

    it("waits for the rest of the interval when the outline is unchanged, whatever the progress", () => {
      assert.equal(
        deferredProgressWrite(running, outlineOf(oneFurther), now - 300, now),
        STATUS_WRITE_INTERVAL_MS - 300,
      );
      assert.equal(deferredProgressWrite(running, outlineOf(running), now - 300, now), STATUS_WRITE_INTERVAL_MS - 300);
    });

    it("leaves the decision to statusWriteDelay when the outline changed, the interval is over or no write is known", () => {
      assert.equal(
        deferredProgressWrite(running, outlineOf({ ...oneFurther, phase: "Verifying" }), now - 300, now),
        undefined,
      );
      assert.equal(
        deferredProgressWrite(running, outlineOf(oneFurther), now - STATUS_WRITE_INTERVAL_MS, now),
        undefined,
      );
      assert.equal(deferredProgressWrite(running, outlineOf(oneFurther), undefined, now), undefined);
    });
  });
});
