import type { ActivityBucket } from "../views/console.ts";

/** Points of a polyline through `values` (at the middle of each slot), scaled to `max`. */
function points(values: number[], width: number, height: number, max: number): string {
  const step = width / Math.max(1, values.length);
  return values.map((v, i) =>
    `${((i + 0.5) * step).toFixed(1)},${(height - (v / max) * height).toFixed(1)}`
  )
    .join(" ");
}

/** Events in (bars) and attempts out, with their failures (lines), per bucket: drawn on the server. */
export function ActivityChart(props: { buckets: ActivityBucket[]; label: string; tick: string }) {
  const { buckets } = props;
  const width = 600, height = 120, pad = 18;
  const max = Math.max(1, ...buckets.flatMap((b) => [b.events, b.attempts]));
  const barWidth = width / Math.max(1, buckets.length);
  const total = (key: "events" | "attempts" | "failures") =>
    buckets.reduce((sum, b) => sum + b[key], 0);
  return (
    <figure>
      <svg
        class="chart"
        viewBox={`0 0 ${width} ${height + pad}`}
        role="img"
        aria-label={`${props.label}: ${total("events")} events in, ${
          total("attempts")
        } attempts out, ${total("failures")} failed`}
      >
        {buckets.map((b, i) => (
          <rect
            class="events"
            x={(i * barWidth + 1).toFixed(1)}
            y={(height - (b.events / max) * height).toFixed(1)}
            width={Math.max(1, barWidth - 2).toFixed(1)}
            height={((b.events / max) * height).toFixed(1)}
          />
        ))}
        <polyline
          class="attempts"
          points={points(buckets.map((b) => b.attempts), width, height, max)}
        />
        <polyline
          class="failures"
          points={points(buckets.map((b) => b.failures), width, height, max)}
        />
        <text x="0" y={height + 14}>{props.tick}</text>
        <text x={width} y={height + 14} text-anchor="end">now</text>
        <text x={width} y="11" text-anchor="end">{max}</text>
      </svg>
      <figcaption class="legend">
        {props.label}: <span class="k-events">■ events in {total("events")}</span>
        <span class="k-attempts">― attempts out {total("attempts")}</span>
        <span class="k-failures">― failed {total("failures")}</span>
      </figcaption>
    </figure>
  );
}

/** Attempts and failures per hour, small. */
export function Sparkline(props: { hourly: { attempts: number; failures: number }[] }) {
  const max = Math.max(1, ...props.hourly.map((h) => h.attempts));
  const attempts = props.hourly.reduce((s, h) => s + h.attempts, 0);
  const failures = props.hourly.reduce((s, h) => s + h.failures, 0);
  return (
    <svg
      class="spark"
      viewBox="0 0 120 24"
      role="img"
      aria-label={`24 h: ${attempts} attempts, ${failures} failed`}
    >
      <polyline
        class="attempts"
        points={points(props.hourly.map((h) => h.attempts), 120, 22, max)}
      />
      <polyline
        class="failures"
        points={points(props.hourly.map((h) => h.failures), 120, 22, max)}
      />
    </svg>
  );
}
