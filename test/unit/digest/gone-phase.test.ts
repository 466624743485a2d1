import assert from "node:assert/strict";
import { DELETED_PHASE, existingVms, MISSING_PHASE, phaseWithoutVmi } from "../../../src/digest/index.js";
import { vm } from "./fixtures.js";

describe("phaseWithoutVmi", () => {
  const vms = existingVms([vm("apps/stopped"), vm("ops/db")]);

  it("indexes VirtualMachines by namespace/name", () => {
    assert.deepEqual([...vms], ["apps/stopped", "ops/db"]);
    assert.deepEqual([...existingVms([{ metadata: {} }])], ["/"]);
  });

  const cases: Array<{ key: string; vms: ReadonlySet<string> | undefined; want: string }> = [
    { key: "apps/stopped", vms, want: MISSING_PHASE },
    { key: "apps/erased", vms, want: DELETED_PHASE },
    // The same name in another namespace is another VM.
    { key: "apps/db", vms, want: DELETED_PHASE },
    { key: "apps/erased", vms: new Set(), want: DELETED_PHASE },
    // VirtualMachines not readable: a deleted VM cannot be told from a stopped one.
    { key: "apps/erased", vms: undefined, want: MISSING_PHASE },
  ];
  for (const c of cases) {
    it(`${c.key} with ${c.vms ? `[${[...c.vms].join(", ")}]` : "no VirtualMachine list"}: ${c.want}`, () =>
      assert.equal(phaseWithoutVmi(c.key, c.vms), c.want));
  }

  it("names the phases as the table and JSON show them", () => {
    assert.equal(MISSING_PHASE, "Missing");
    assert.equal(DELETED_PHASE, "Deleted");
  });
});
