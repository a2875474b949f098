/**
 * Memoises `make` by key, keeping at most `limit` results and forgetting the
 * oldest first. Promises are kept, so concurrent first uses share one call;
 * a promise that rejects is forgotten, so the next use tries again.
 */
export function boundedMemo<T>(
  limit: number,
  make: (key: string) => Promise<T>,
): (key: string) => Promise<T> {
  const results = new Map<string, Promise<T>>();
  return (key) => {
    const cached = results.get(key);
    if (cached !== undefined) return cached;
    // Maps iterate in insertion order, so the first key is the oldest.
    if (results.size >= limit) results.delete(results.keys().next().value!);
    const result = make(key);
    results.set(key, result);
    result.catch(() => results.delete(key));
    return result;
  };
}
