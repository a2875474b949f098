/**
 * `deno run --allow-all tests/bench/relay_cpu.ts [--rounds N] [--requests R]`: what
 * the API's connection relay (`src/http/serve.ts`, the guard that times a
 * request's head) costs the server's CPU per request, against `Deno.serve`
 * listening on TCP itself. Each round starts the server twice as a process of
 * its own, once each way (in turn first), posts R small JSON events to it from
 * 32 keep-alive producers in this process, and reads the server's CPU time
 * (user + system) from /proc. The handler reads the body and answers 201 with
 * a small JSON body, as ingest does; nothing else of Dispatch runs. Linux only.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { serve } from "../../src/http/serve.ts";
import { stat, ticksPerSecond } from "./cpu.ts";
import { freePort, round, sleep } from "./harness.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "4" },
    requests: { type: "string", default: "6000" },
    // Internal: this process is the server.
    server: { type: "string" },
    port: { type: "string" },
  },
});

type Way = "relay" | "direct";

const handler = async (req: Request) => {
  await req.text();
  return Response.json({ id: "evt_1", created_at: new Date().toISOString() }, { status: 201 });
};

if (args.server) {
  const port = Number(args.port);
  if (args.server === "direct") Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
  else await serve({ hostname: "127.0.0.1", port, headerTimeoutMs: 10_000 }, handler);
} else {
  await compare();
}

/** User + system CPU time of a running process, in µs. */
function cpuUs(pid: number): number {
  return (stat(pid)!.ticks * 1e6) / ticksPerSecond;
}

async function serverCpuPerRequest(way: Way, requests: number): Promise<number> {
  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      "--server",
      way,
      "--port",
      `${port}`,
    ],
    stdout: "null",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}/events`;
    for (let i = 0; i < 100; i++) {
      try {
        await (await fetch(url)).body?.cancel();
        break;
      } catch {
        await sleep(100);
      }
    }
    const body = JSON.stringify({ type: "bench.event", data: { n: 1, pad: "x".repeat(64) } });
    const before = cpuUs(server.pid);
    let sent = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (sent++ < requests) {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        await res.text();
      }
    }));
    return (cpuUs(server.pid) - before) / requests;
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
}

async function compare() {
  const rounds = Number(args.rounds);
  const requests = Number(args.requests);
  const sums = { relay: 0, direct: 0 };
  for (let r = 0; r < rounds; r++) {
    const ways: Way[] = r % 2 === 0 ? ["relay", "direct"] : ["direct", "relay"];
    const line: Record<string, number> = {};
    for (const way of ways) {
      line[way] = round(await serverCpuPerRequest(way, requests), 1);
      sums[way] += line[way]!;
    }
    console.log(JSON.stringify({ round: r + 1, server_cpu_us_per_request: line }));
  }
  console.log(JSON.stringify({
    rounds,
    requests,
    relay_us: round(sums.relay / rounds, 1),
    direct_us: round(sums.direct / rounds, 1),
    relay_costs_us: round((sums.relay - sums.direct) / rounds, 1),
  }));
}
