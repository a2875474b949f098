/** Times as the console shows them: UTC, to the second. */
export function utc(at: Date | string | null): string {
  if (at === null) return "";
  return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** "3 min ago", "in 20 s": how far `at` is from `now`. */
export function ago(at: Date | string, now = Date.now()): string {
  const ms = new Date(at).getTime() - now;
  const s = Math.round(Math.abs(ms) / 1000);
  const size = s < 60
    ? `${s} s`
    : s < 3600
    ? `${Math.round(s / 60)} min`
    : s < 172_800
    ? `${Math.round(s / 3600)} h`
    : `${Math.round(s / 86_400)} d`;
  return ms > 0 ? `in ${size}` : `${size} ago`;
}

/** A duration in milliseconds as "340 ms" or "2.5 s". */
export function duration(ms: number | null): string {
  if (ms === null) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A ratio from 0 to 1 as a percentage; "–" for none. */
export function percent(ratio: number | null): string {
  return ratio === null ? "–" : `${(ratio * 100).toFixed(ratio === 1 ? 0 : 1)} %`;
}
