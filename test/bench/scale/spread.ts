// How the scale benchmark spreads its VMIs over the nodes: about `perNode` on average, unevenly, as a real
// cluster is: about a tenth of the nodes run none, one in twenty runs `max`, the rest a varying few. Pure and
// seeded, so every run of the benchmark places the same VMs on the same nodes.

/** A small seeded pseudo-random generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SpreadOptions {
  /** Average VMIs per node; the counts add up to nodes × perNode exactly. */
  perNode: number;
  /** The most any node runs (the "heavy" nodes run exactly this many). */
  max: number;
  /** Share of the nodes that run no VMI. */
  emptyShare: number;
  /** Share of the nodes that run `max`. */
  heavyShare: number;
  seed: number;
}

export const DEFAULT_SPREAD: SpreadOptions = { perNode: 10, max: 50, emptyShare: 0.1, heavyShare: 0.05, seed: 15 };

/** VMIs per node, by node index. */
export function spreadVmis(nodes: number, options: SpreadOptions = DEFAULT_SPREAD): number[] {
  const { perNode, max, emptyShare, heavyShare } = options;
  const random = seededRandom(options.seed);
  const total = nodes * perNode;
  // At least one of each where there is room, so that a small cluster is uneven too.
  const empty = Math.min(Math.max(1, Math.floor(nodes * emptyShare)), nodes - 1);
  const heavy = Math.min(Math.max(1, Math.floor(nodes * heavyShare)), Math.floor(total / max), nodes - empty - 1);
  const kinds: Array<"empty" | "heavy" | "light"> = [
    ...Array<"empty">(empty).fill("empty"),
    ...Array<"heavy">(heavy).fill("heavy"),
    ...Array<"light">(nodes - empty - heavy).fill("light"),
  ];
  // Fisher-Yates with the seeded generator: empty and heavy nodes anywhere in the node order.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const light = kinds.map((k, i) => (k === "light" ? i : -1)).filter((i) => i >= 0);
  const counts = kinds.map((k) => (k === "heavy" ? max : 0));
  const rest = total - heavy * max;
  if (light.length === 0) return counts;
  // Each light node draws around the mean of what is left, then the draws are scaled to add up exactly.
  const mean = rest / light.length;
  const draws = light.map(() => 0.25 + 1.5 * random());
  const scale = rest / draws.reduce((a, b) => a + b, 0);
  light.forEach((node, k) => (counts[node] = Math.min(max - 1, Math.max(1, Math.round(draws[k]! * scale)))));
  // Rounding and the bounds leave a small difference: take it from (or give it to) the light nodes in turn.
  let diff = rest - light.reduce((sum, node) => sum + counts[node]!, 0);
  for (let k = 0; diff !== 0 && k < light.length * max; k++) {
    const node = light[k % light.length]!;
    const next = counts[node]! + Math.sign(diff);
    if (next < 1 || next > max - 1) continue;
    counts[node] = next;
    diff -= Math.sign(diff);
  }
  if (diff !== 0) throw new Error(`cannot spread ${total} VMIs over ${nodes} nodes (mean ${mean.toFixed(1)})`);
  return counts;
}
