// Reads the Prometheus text format that kube-apiserver, etcd and the operator serve at /metrics, and sums and
// subtracts counters between two scrapes. Pure.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line.trim());
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const value = Number(m[3]);
    if (!Number.isNaN(value)) samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

/** The sum of a metric's samples, by the values of `keys` joined with " " (samples failing `filter` left out). */
export function sumBy(
  samples: readonly Sample[],
  name: string,
  keys: readonly string[],
  filter: (labels: Record<string, string>) => boolean = () => true,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || !filter(s.labels)) continue;
    const key = keys.map((k) => s.labels[k] ?? "").join(" ");
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** The value of a metric without labels (or the sum of its samples); undefined when absent. */
export function valueOf(samples: readonly Sample[], name: string): number | undefined {
  const matching = samples.filter((s) => s.name === name);
  return matching.length ? matching.reduce((sum, s) => sum + s.value, 0) : undefined;
}

/** after − before per key, leaving out keys that did not change. */
export function subtract(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta !== 0) out.set(key, delta);
  }
  return out;
}
