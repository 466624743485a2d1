import { fnv1a32 } from "./fnv1a.js";

// The Random ordering policy must be reproducible: the same seed and the same nodes give the same order,
// on every replica and after every operator restart, so Math.random() is out. mulberry32 is a tiny,
// well-known 32-bit generator; its quality is ample for shuffling a list of nodes.

/** A deterministic generator of floats in [0, 1) for the given seed (mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy of `items` (Fisher-Yates driven by mulberry32); the input is left untouched. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  const next = mulberry32(seed);
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const a = result[i] as T;
    result[i] = result[j] as T;
    result[j] = a;
  }
  return result;
}

/**
 * A seed in spec.ordering.seed's range (0..2^31-1) derived from some stable text, typically the
 * FederatedBackup's metadata.uid. spec.ordering.seed is optional and "without a seed every run is shuffled
 * differently", but the planner may not invent randomness: the caller passes `seed ?? seedFromText(uid)`,
 * which differs between backups yet stays the same across the reconciles of one backup.
 */
export function seedFromText(text: string): number {
  return fnv1a32(text) & 0x7fffffff;
}
