// The two timestamp formats the Kubernetes API uses, in one place.

/** metav1.Time: RFC 3339 to the second, as status timestamps and conditions carry them. */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** metav1.MicroTime: RFC 3339 with microseconds, as Leases and events.k8s.io Events carry them. */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace("Z", "000Z");
