import assert from "node:assert/strict";
import { queueStats } from "../../src/db/stats.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { createSender } from "../../src/worker/sender.ts";
import { withTestDatabase } from "../helpers/db.ts";
import { claim, seedDeliveries } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { quiet } from "../helpers/worker.ts";

Deno.test("a paced delivery waits for its slot by the database's clock, whatever the worker's clock says", () =>
  withTestDatabase(async (db) => {
    const abort = new AbortController();
    const receiver = startReceiver(() => (abort.abort(), new Response("ok")));
    const realNow = Date.now;
    try {
      await seedDeliveries(db.sql, 2, { rateLimit: 1, url: receiver.url });
      // The first goes at once, the second a second later.
      const [first, second] = await claim(db.sql, { limit: 2, horizonMs: 5_000 });
      assert.equal(first!.send_in_ms, null);
      assert.ok(second!.send_in_ms! > 900);
      const send = createSender({
        log: quiet,
        metrics: createMetrics({
          inFlight: () => 0,
          queueStats: () => queueStats(db.sql),
          log: quiet,
        }),
        secrets: createSecretCipher(null),
        resolve: () => Promise.resolve([]),
      }, {
        deliveryTimeoutMs: 5_000,
        retryBaseDelayMs: 1_000,
        retryMaxDelayMs: 1_000,
        allowPrivateTargets: true,
        allowedTargetCidrs: [],
      });
      // This worker's clock runs an hour ahead of the database's.
      Date.now = () => realNow() + 3_600_000;
      // The first one's arrival stops the worker: the second was still waiting for its slot.
      const outcomes = await Promise.all([send(first!, abort.signal), send(second!, abort.signal)]);
      assert.equal(receiver.received.length, 1);
      assert.deepEqual(outcomes.map((o) => o === null ? "not sent" : "sent"), ["sent", "not sent"]);
    } finally {
      Date.now = realNow;
      await receiver.close();
    }
  }));
