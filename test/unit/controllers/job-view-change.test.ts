import assert from "node:assert/strict";
import { onJobViewChange } from "../../../src/controllers/runtime/job-view.js";
import { exceptOwnWrites } from "../../../src/controllers/runtime/own-writes.js";

type Job = {
  metadata: { name: string; deletionTimestamp?: string };
  status?: {
    active?: number;
    ready?: number;
    completionTime?: string;
    conditions?: Array<{ type: string; status: string }>;
  };
};

const job = (status: Job["status"], deleting = false): Job => ({
  metadata: { name: "step-1", ...(deleting ? { deletionTimestamp: "2026-11-30T10:00:00Z" } : {}) },
  status,
});
const keys = onJobViewChange<Job>(() => ["vms/nightly"]);
const woke = (event: "add" | "update" | "delete", obj: Job, old?: Job) => [...keys(event, obj, old)].length > 0;

describe("onJobViewChange", () => {
  it("does not wake the run for the Job controller's counts (active, ready)", () => {
    assert.equal(woke("update", job({ active: 1, ready: 1 }), job({ active: 1 })), false);
  });

  it("wakes it when the Job completes or fails, is created, is deleted or starts being deleted", () => {
    const done = job({ completionTime: "t", conditions: [{ type: "Complete", status: "True" }] });
    assert.equal(woke("update", done, job({ active: 1 })), true);
    assert.equal(woke("update", job({ conditions: [{ type: "Failed", status: "True" }] }), job({ active: 1 })), true);
    assert.equal(woke("add", job({})), true);
    assert.equal(woke("delete", job({ active: 1 })), true);
    assert.equal(woke("update", job({ active: 1 }, true), job({ active: 1 })), true);
  });
});

describe("exceptOwnWrites", () => {
  it("drops the echo of this process's own write, and nothing else", () => {
    const mapped = exceptOwnWrites<Job>(() => ["vms/nightly"]);
    assert.deepEqual([...mapped("update", job({}), job({}), { ownWrite: true })], []);
    assert.deepEqual([...mapped("update", job({}), job({}), { ownWrite: false })], ["vms/nightly"]);
    assert.deepEqual([...mapped("add", job({}))], ["vms/nightly"]);
  });
});
