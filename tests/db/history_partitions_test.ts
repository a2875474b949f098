import assert from "node:assert/strict";
import { partitionWidthMs } from "../../src/db/history_partitions.ts";

const minute = 60_000;
const day = 1_440 * minute;

Deno.test("partitions are the widest step at most a quarter of the retention, a month when kept forever", () => {
  assert.deepEqual(
    [3 * minute, 20 * minute, 0.01 * day, 1 * day, 7 * day, 30 * day, 90 * day, null].map(
      partitionWidthMs,
    ),
    [minute, 5 * minute, minute, 360 * minute, day, 7 * day, 7 * day, 30 * day],
  );
});
