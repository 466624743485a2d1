// RFC 3339 timestamps from object statuses, as epoch milliseconds.

/** Milliseconds since the epoch, or undefined for an absent or unparsable timestamp. */
export function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The first of `candidates` that parses, with its text; undefined when none does. */
export function firstTime(candidates: ReadonlyArray<string | undefined>): { at: string; ms: number } | undefined {
  for (const at of candidates) {
    const ms = parseTime(at);
    if (ms !== undefined) return { at: at!, ms };
  }
  return undefined;
}
