import assert from "node:assert/strict";
import { exclusiveClaims } from "../../../src/planning/claim-ownership.js";
import type { PlannedClaim } from "../../../src/planning/index.js";

const claim = (volume: string, claimName: string, volumeMode: "Filesystem" | "Block" = "Filesystem"): PlannedClaim => ({
  volume,
  claimName,
  sourceKind: "PersistentVolumeClaim",
  volumeMode,
});

describe("exclusiveClaims", () => {
  it("gives each VM the claims it alone names, sorted by volume", () => {
    const owned = exclusiveClaims([
      {
        workload: { namespace: "a", name: "vm-1" },
        claims: [claim("root", "vm-1-root"), claim("data", "vm-1-data", "Block")],
      },
      { workload: { namespace: "a", name: "vm-2" }, claims: [claim("root", "vm-2-root")] },
    ]);
    assert.deepEqual(
      owned.get("a/vm-1")!.map((c) => c.volume),
      ["data", "root"],
    );
    assert.deepEqual(owned.get("a/vm-2"), [claim("root", "vm-2-root")]);
  });

  it("gives a claim two VMs name to neither, and leaves out a VM left with none", () => {
    const owned = exclusiveClaims([
      { workload: { namespace: "a", name: "vm-1" }, claims: [claim("root", "vm-1-root"), claim("shared", "scratch")] },
      { workload: { namespace: "a", name: "vm-2" }, claims: [claim("disk", "scratch")] },
    ]);
    assert.deepEqual(owned.get("a/vm-1"), [claim("root", "vm-1-root")]);
    assert.equal(owned.has("a/vm-2"), false);
  });

  it("tells claims of one name in two namespaces apart", () => {
    const owned = exclusiveClaims([
      { workload: { namespace: "a", name: "vm" }, claims: [claim("root", "root")] },
      { workload: { namespace: "b", name: "vm" }, claims: [claim("root", "root")] },
    ]);
    assert.deepEqual([...owned.keys()], ["a/vm", "b/vm"]);
  });

  it("counts a VM naming one claim through two volumes as one owner", () => {
    const owned = exclusiveClaims([
      { workload: { namespace: "a", name: "vm" }, claims: [claim("one", "disk"), claim("two", "disk")] },
    ]);
    assert.equal(owned.get("a/vm")!.length, 2);
  });
});
