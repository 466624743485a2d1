// Points in time as the CLI takes them: an age ("30m", "2h", "7d", "1h30m") or an ISO 8601 timestamp.

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * "2h" is two hours before `now`; units s, m (minutes), h, d, w, combinable ("1d12h") and fractional
 * ("1.5h"). Anything else must be an ISO 8601 date or timestamp ("2025-01-31", "2025-01-31T12:00:00Z").
 * Throws on anything else.
 */
export function parseWhen(text: string, now: number): Date {
  const t = text.trim();
  if (/^(\d+(\.\d+)?[smhdw])+$/.test(t)) {
    let ms = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    return new Date(now - ms);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  throw new Error(
    `invalid time "${text}": give an age such as 30m, 2h, 7d or 1h30m, or an ISO timestamp such as 2025-01-31T12:00:00Z`,
  );
}
