// Many independent requests at once, but not all at once: at most `limit` in flight, so that a run of
// 1,000 nodes neither waits on 1,000 round trips one after another nor floods the API server (and its
// client-side rate limits) with 1,000 at the same instant.

/**
 * Calls `fn` on every item with at most `limit` calls in flight, and resolves to the results in the
 * items' order. The first failure rejects once every call started has settled (none is left running
 * behind the caller's back); no new call starts after a failure.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
  return results;
}
