import assert from "node:assert/strict";
import { logAction, logPhase } from "../../../src/controllers/runtime/log-action.js";
import type { KubeObject } from "../../../src/k8s/types.js";

function recorder() {
  const lines: Array<{ level: string; message: string; meta?: Record<string, unknown> }> = [];
  return {
    lines,
    info: (message: string, meta?: Record<string, unknown>) => lines.push({ level: "info", message, meta }),
    debug: (message: string, meta?: Record<string, unknown>) => lines.push({ level: "debug", message, meta }),
  };
}

const backup: KubeObject = { kind: "FederatedBackup", metadata: { namespace: "ns", name: "nightly" } };
const step = { metadata: { name: "nightly-r2-node-b" }, spec: { node: "node-b", round: 2 } };

describe("logAction", () => {
  it("logs one info line per action with the object, kind, step, node and round", () => {
    const log = recorder();
    logAction(log, backup, { kind: "StartJob", step });
    logAction(log, backup, { kind: "Event" });
    assert.deepEqual(log.lines, [
      {
        level: "info",
        message: "starting the node Job",
        meta: {
          object: "ns/nightly",
          kind: "FederatedBackup",
          action: "StartJob",
          step: "nightly-r2-node-b",
          node: "node-b",
          round: 2,
        },
      },
    ]);
  });

  it("logs a lease claim for the node that holds it for this run at debug (a renewal)", () => {
    const log = recorder();
    const lease = {
      metadata: { name: "l", annotations: { "fedbackup.io/owner": "me" } },
      spec: { holderIdentity: "node-b" },
    };
    logAction(log, backup, { kind: "ClaimLease", node: "node-b", step: "s" }, { object: lease, owner: "me" });
    logAction(log, backup, { kind: "ClaimLease", node: "node-c", step: "s" }, { object: lease, owner: "me" });
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.meta?.node]),
      [
        ["debug", "node-b"],
        ["info", "node-c"],
      ],
    );
  });

  it("logs phase changes only", () => {
    const log = recorder();
    logPhase(log, backup, "Running", "Running");
    logPhase(log, backup, undefined, "Running");
    assert.deepEqual(
      log.lines.map((l) => l.message),
      ["FederatedBackup phase New -> Running"],
    );
  });
});
