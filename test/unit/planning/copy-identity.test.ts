import assert from "node:assert/strict";
import { copyFirmwareUuid, copyMacAddress, copySerial } from "../../../src/planning/copy-identity.js";

const copy = { namespace: "vms", name: "db-0-copy" };
const other = { namespace: "vms", name: "db-1-copy" };
const otherNamespace = { namespace: "staging", name: "db-0-copy" };

describe("copyMacAddress", () => {
  it("is a locally administered unicast address (first octet 0x02)", () => {
    for (const target of [copy, other, otherNamespace]) {
      for (const iface of ["default", "storage", ""]) {
        const mac = copyMacAddress(target, iface);
        assert.match(mac, /^02(:[0-9a-f]{2}){5}$/);
      }
    }
  });

  it("is the same for the same target and interface", () => {
    assert.equal(copyMacAddress(copy, "default"), copyMacAddress({ ...copy }, "default"));
  });

  it("differs between targets, namespaces and interfaces", () => {
    const macs = [
      copyMacAddress(copy, "default"),
      copyMacAddress(other, "default"),
      copyMacAddress(otherNamespace, "default"),
      copyMacAddress(copy, "storage"),
    ];
    assert.equal(new Set(macs).size, macs.length);
  });

  it("is not fooled by a '/' or newline moved between namespace, name and interface", () => {
    assert.notEqual(
      copyMacAddress({ namespace: "a", name: "b" }, "c"),
      copyMacAddress({ namespace: "a", name: "b\nc" }, ""),
    );
  });
});

describe("copyFirmwareUuid", () => {
  it("is shaped like a version 4 UUID (RFC 4122 variant)", () => {
    for (const target of [copy, other, otherNamespace, { namespace: "a", name: "b" }]) {
      assert.match(copyFirmwareUuid(target), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });

  it("is stable for a target and differs between targets", () => {
    assert.equal(copyFirmwareUuid(copy), copyFirmwareUuid({ ...copy }));
    const uuids = [copy, other, otherNamespace].map(copyFirmwareUuid);
    assert.equal(new Set(uuids).size, uuids.length);
  });
});

describe("copySerial", () => {
  it("is 16 hex digits, stable for a target and different between targets", () => {
    assert.match(copySerial(copy), /^[0-9a-f]{16}$/);
    assert.equal(copySerial(copy), copySerial({ ...copy }));
    const serials = [copy, other, otherNamespace].map(copySerial);
    assert.equal(new Set(serials).size, serials.length);
  });

  it("is not the UUID's digits", () => {
    assert.ok(!copyFirmwareUuid(copy).replace(/-/g, "").includes(copySerial(copy)));
  });
});
