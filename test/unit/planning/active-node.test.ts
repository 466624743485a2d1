import assert from "node:assert/strict";
import { activeNodeOf } from "../../../src/planning/index.js";
import { vm } from "./fixtures.js";

describe("activeNodeOf", () => {
  const cases: Array<{ title: string; phase: string; node?: string; migrating?: boolean; want: string | undefined }> = [
    { title: "Running on a node", phase: "Running", node: "n1", want: "n1" },
    {
      title: "Running while migrating: still on the source node",
      phase: "Running",
      node: "n1",
      migrating: true,
      want: "n1",
    },
    { title: "Running without a node name", phase: "Running", want: undefined },
    { title: "Running with an empty node name", phase: "Running", node: "", want: undefined },
    { title: "Pending", phase: "Pending", node: "n1", want: undefined },
    { title: "Scheduling", phase: "Scheduling", node: "n1", want: undefined },
    { title: "Scheduled (not yet running)", phase: "Scheduled", node: "n1", want: undefined },
    { title: "Succeeded (stopped)", phase: "Succeeded", node: "n1", want: undefined },
    { title: "Failed", phase: "Failed", node: "n1", want: undefined },
    { title: "Unknown", phase: "Unknown", node: "n1", want: undefined },
    { title: "phase spelled differently", phase: "running", node: "n1", want: undefined },
  ];
  for (const { title, phase, node, migrating = false, want } of cases) {
    it(title, () => {
      assert.equal(activeNodeOf(vm("ns/a", { phase, migrating, ...(node === undefined ? {} : { node }) })), want);
    });
  }
});
