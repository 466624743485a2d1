// The identities a copy must not share with its original: two VMs with one MAC address on one network
// break each other's traffic, and software licensed or clustered by firmware UUID or serial takes them for
// one machine. A copy gets new ones, derived from its own namespace and name rather than drawn at random,
// so that an operator restarted halfway creates the very same VirtualMachine again.
import { fnv1a32 } from "./fnv1a.js";
import type { WorkloadRef } from "./types.js";

/** 32 bits per call, so each value takes several salted hashes. */
const hashes = (text: string, count: number): number[] =>
  Array.from({ length: count }, (_, i) => fnv1a32(`${i}\n${text}`));

const hex = (n: number, digits: number) =>
  n
    .toString(16)
    .padStart(8, "0")
    .slice(8 - digits);

/**
 * A locally administered unicast MAC address (first octet 0x02: never a vendor's, never multicast), one per
 * interface of the copy.
 */
export function copyMacAddress(target: WorkloadRef, interfaceName: string): string {
  const [a, b] = hashes(`mac\n${target.namespace}/${target.name}\n${interfaceName}`, 2) as [number, number];
  const bytes = [0x02, a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff, b & 0xff];
  return bytes.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** A version 4 (random) UUID in form, its bits from the copy's name. */
export function copyFirmwareUuid(target: WorkloadRef): string {
  const [a, b, c, d] = hashes(`uuid\n${target.namespace}/${target.name}`, 4) as [number, number, number, number];
  const all = hex(a, 8) + hex(b, 8) + hex(c, 8) + hex(d, 8);
  const variant = ((parseInt(all[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${all.slice(0, 8)}-${all.slice(8, 12)}-4${all.slice(13, 16)}-${variant}${all.slice(17, 20)}-${all.slice(20, 32)}`;
}

/** A firmware serial of 16 hex digits. */
export function copySerial(target: WorkloadRef): string {
  const [a, b] = hashes(`serial\n${target.namespace}/${target.name}`, 2) as [number, number];
  return hex(a, 8) + hex(b, 8);
}
