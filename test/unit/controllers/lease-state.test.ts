import assert from "node:assert/strict";
import { microTime } from "../../../src/api/timestamps.js";
import {
  claimStorageLeases,
  leaseSetStateOf,
  waitingForLeaseMessage,
} from "../../../src/controllers/runtime/lease-state.js";
import { ApiError } from "../../../src/k8s/errors.js";
import { LEASE_OWNER_ANNOTATION, type LeaseObject, type VolumeLeases } from "../../../src/k8s/volume-lease.js";

const NOW = Date.parse("2026-11-29T12:00:00Z");
const ME = "FederatedBackup/vms/a/uid-a";
const OTHER = "FederatedBackup/vms/b/uid-b";

function lease(owner: string, node: string, renewedAgoMs = 1_000): LeaseObject {
  return {
    metadata: {
      name: "l",
      namespace: "fedbackup-system",
      resourceVersion: "1",
      annotations: { [LEASE_OWNER_ANNOTATION]: owner },
    },
    spec: { holderIdentity: node, leaseDurationSeconds: 60, renewTime: microTime(NOW - renewedAgoMs) },
  };
}

const active = () => true;

describe("runtime/lease-state leaseSetStateOf", () => {
  it("is ours when every Lease is, renewed when the oldest was, on the node they all name", () => {
    const leases = new Map([
      ["storageclass/fast", lease(ME, "n1", 3_000)],
      ["volume/v", lease(ME, "n1", 1_000)],
    ]);
    const state = leaseSetStateOf([...leases.keys()], (k) => leases.get(k), ME, NOW, active);
    assert.equal(state.ours, true);
    assert.equal(state.free, false);
    assert.equal(state.heldSome, false);
    assert.equal(state.renewedAt, NOW - 3_000);
    assert.equal(state.holderNode, "n1");
  });

  it("names no holder node while the Leases name different nodes (a claim moves them all)", () => {
    const leases = new Map([
      ["a", lease(ME, "n1")],
      ["b", lease(ME, "n2")],
    ]);
    assert.equal(leaseSetStateOf(["a", "b"], (k) => leases.get(k), ME, NOW, active).holderNode, undefined);
  });

  it("is free when each Lease is ours or nobody's, and says it holds some", () => {
    const leases = new Map([["a", lease(ME, "n1")]]);
    const state = leaseSetStateOf(["a", "b"], (k) => leases.get(k), ME, NOW, active);
    assert.deepEqual([state.ours, state.free, state.heldSome], [false, true, true]);
  });

  it("is blocked by the first Lease another active run holds, and names it and its owner", () => {
    const leases = new Map([
      ["a", lease(ME, "n1")],
      ["b", lease(OTHER, "n2")],
    ]);
    const state = leaseSetStateOf(["a", "b"], (k) => leases.get(k), ME, NOW, active);
    assert.deepEqual([state.ours, state.free, state.heldSome, state.blockedKey], [false, false, true, "b"]);
    assert.equal(state.owner, "FederatedBackup/vms/b");
    assert.equal(
      waitingForLeaseMessage(state),
      "the storage back end b is in use by FederatedBackup/vms/b; waiting for it to finish",
    );
  });

  it("takes over a Lease whose owner has finished", () => {
    const leases = new Map([["b", lease(OTHER, "n2")]]);
    assert.equal(
      leaseSetStateOf(
        ["b"],
        (k) => leases.get(k),
        ME,
        NOW,
        () => false,
      ).free,
      true,
    );
  });

  it("holds an empty set when the run has nothing to serialize on", () => {
    const state = leaseSetStateOf([], () => undefined, ME, NOW, active);
    assert.deepEqual([state.ours, state.free, state.heldSome, state.keys], [true, false, false, []]);
  });
});

/** VolumeLeases over a map, refusing to claim the keys in `refuse` (as a Lease changed meanwhile would be). */
function fakeLeases(held: Map<string, LeaseObject>, refuse: Set<string>) {
  const calls: string[] = [];
  const leases = {
    namespace: "fedbackup-system",
    read: (key: string) => Promise.resolve(held.get(key)),
    claim: (key: string, _current: LeaseObject | undefined, owner: string, node: string) => {
      calls.push(`claim ${key}`);
      if (refuse.has(key)) return Promise.reject(new ApiError(409, "Conflict", `lease ${key} changed`));
      const l = lease(owner, node, 0);
      held.set(key, l);
      return Promise.resolve(l);
    },
    release: (key: string, owner: string) => {
      calls.push(`release ${key}`);
      if (held.get(key)?.metadata.annotations?.[LEASE_OWNER_ANNOTATION] === owner) held.delete(key);
      return Promise.resolve();
    },
  };
  return { leases: leases as unknown as VolumeLeases, calls };
}

describe("runtime/lease-state claimStorageLeases", () => {
  const claim = { owner: ME, node: "n1", step: "a-r1-n1", now: NOW };

  it("takes every Lease in the order given", async () => {
    const held = new Map<string, LeaseObject>();
    const { leases, calls } = fakeLeases(held, new Set());
    const written = await claimStorageLeases(leases, ["a", "b", "c"], () => undefined, claim, active);
    assert.deepEqual(calls, ["claim a", "claim b", "claim c"]);
    assert.equal(written.length, 3);
    assert.deepEqual([...held.keys()], ["a", "b", "c"]);
  });

  it("all or none: gives back what it just took when one cannot be had, and keeps what it held before", async () => {
    const held = new Map<string, LeaseObject>([["a", lease(ME, "n0")]]);
    const { leases, calls } = fakeLeases(held, new Set(["c"]));
    await assert.rejects(
      claimStorageLeases(leases, ["a", "b", "c"], (k) => held.get(k), claim, active),
      /lease c changed/,
    );
    assert.deepEqual(calls, ["claim a", "claim b", "claim c", "release b"]);
    assert.deepEqual([...held.keys()], ["a"], "a was held before this pass and stays held");
  });

  it("refuses a Lease another active run holds without writing it", async () => {
    const held = new Map<string, LeaseObject>([["b", lease(OTHER, "n2")]]);
    const { leases, calls } = fakeLeases(held, new Set());
    await assert.rejects(
      claimStorageLeases(leases, ["a", "b"], (k) => held.get(k), claim, active),
      /the Lease of b was just taken by FederatedBackup\/vms\/b/,
    );
    assert.deepEqual(calls, ["claim a", "release a"]);
    assert.equal(held.get("b")?.metadata.annotations?.[LEASE_OWNER_ANNOTATION], OTHER);
  });
});
