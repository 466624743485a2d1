// The two timestamp formats the Kubernetes API uses, in one place.

/** metav1.Time: RFC 3339 to the second, as status timestamps and conditions carry them. */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** metav1.MicroTime: RFC 3339 with microseconds, as Leases and events.k8s.io Events carry them. */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace("Z", "000Z");

/** Seconds from one RFC 3339 time to another; undefined if either is absent or unreadable, or it runs backwards. */
export function secondsBetween(start: string | undefined, end: string | undefined): number | undefined {
  const a = Date.parse(start ?? "");
  const b = Date.parse(end ?? "");
  if (Number.isNaN(a) || Number.isNaN(b) || b < a) return undefined;
  return (b - a) / 1000;
}
