// Kubernetes resource quantities ("500m", "2Gi", "1k", "3") as plain numbers of base units.
const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

// Every pass reads every node's allocatable and every agent pod's requests, a few distinct strings ("8",
// "32Gi", "100m") at 1,000 nodes: each is parsed once. Bounded, for quantities that keep changing.
const parsed = new Map<string, number>();
const PARSED_LIMIT = 1024;

export function parseQuantity(q: string): number {
  const known = parsed.get(q);
  if (known !== undefined) return known;
  const value = parseQuantityText(q);
  if (parsed.size >= PARSED_LIMIT) parsed.clear();
  parsed.set(q, value);
  return value;
}

function parseQuantityText(q: string): number {
  const m = /^([+-]?[0-9.]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]*)$/.exec(q.trim());
  if (!m) return 0;
  const factor = SUFFIX[m[3] ?? ""];
  if (factor === undefined) return 0;
  return Number(m[1]) * 10 ** Number(m[2] ?? 0) * factor;
}
