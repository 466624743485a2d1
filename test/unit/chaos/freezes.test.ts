import assert from "node:assert/strict";
import {
  checkFreezesBalanced,
  checkFrozenOneNodeAtATime,
  frozenWindows,
  type FreezeCall,
} from "../../chaos/invariants/freezes.js";

const call = (op: FreezeCall["op"], vm: string, at: number, node = "node-a", status = 200): FreezeCall => ({
  op,
  vm,
  at,
  node,
  status,
});

describe("chaos invariant: freezes", () => {
  it("pairs each successful freeze with the next successful thaw", () => {
    const windows = frozenWindows([
      call("freeze", "ns/a", 1),
      call("unfreeze", "ns/a", 3, "node-a", 500),
      call("unfreeze", "ns/a", 4),
      call("freeze", "ns/b", 5, "node-b", 409),
    ]);
    assert.deepEqual(windows, [{ vm: "ns/a", node: "node-a", from: 1, to: 4 }]);
  });

  it("catches a VM frozen and never thawed, and one that reports itself frozen", () => {
    const calls = [call("freeze", "ns/a", 1), call("freeze", "ns/b", 2), call("unfreeze", "ns/b", 3)];
    const v = checkFreezesBalanced(calls, new Set(["ns/a", "ns/b"]), ["ns/b"]);
    assert.deepEqual(
      v.map((x) => x.detail),
      ["ns/a frozen on node-a at 1 and never thawed", "ns/b still reports fsFreezeStatus frozen at the end"],
    );
  });

  it("does not count a VM frozen and then deleted", () => {
    assert.deepEqual(checkFreezesBalanced([call("freeze", "ns/a", 1)], new Set()), []);
  });

  it("accepts frozen windows of one node overlapping and of two nodes one after the other", () => {
    const calls = [
      call("freeze", "ns/a", 1),
      call("freeze", "ns/b", 2),
      call("unfreeze", "ns/a", 3),
      call("unfreeze", "ns/b", 4),
      call("freeze", "ns/c", 4, "node-b"),
      call("unfreeze", "ns/c", 6, "node-b"),
    ];
    assert.deepEqual(checkFrozenOneNodeAtATime(calls, 10), []);
  });

  it("catches two nodes frozen at once, and a window never closed", () => {
    const calls = [
      call("freeze", "ns/a", 1),
      call("freeze", "ns/c", 2, "node-b"),
      call("unfreeze", "ns/c", 3, "node-b"),
      call("freeze", "ns/d", 7, "node-c"),
    ];
    const v = checkFrozenOneNodeAtATime(calls, 10);
    assert.equal(v.length, 2);
    assert.match(v[0]!.detail, /ns\/a frozen on node-a .* while ns\/c was frozen on node-b/);
    assert.match(v[1]!.detail, /ns\/a .*never thawed.* ns\/d was frozen on node-c/);
  });
});
