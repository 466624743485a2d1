// Ages for people: "45s ago", "12m ago", "5h ago", "3d ago".

/** How long before `now` the timestamp `at` lies; a timestamp in the future (clock skew) is "0s ago". */
export function formatAge(at: string, now: number): string {
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) return "?";
  const s = Math.max(0, Math.floor((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}
