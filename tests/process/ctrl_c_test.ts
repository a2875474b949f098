/**
 * Ctrl+C in a real terminal against `deno task start`, as a person runs it:
 * the keypress reaches both `deno task` and Dispatch, and `deno task`
 * forwards its copy, so one press arrives as two SIGINTs.
 */
import assert from "node:assert/strict";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";
import { openTerminal, type Terminal } from "../helpers/terminal.ts";

const root = new URL("../..", import.meta.url).pathname;

const logLines = async (t: Terminal) =>
  (await t.stdout()).split("\n").filter(Boolean).map((l) => JSON.parse(l));

const messages = async (t: Terminal) => (await logLines(t)).map((l) => l.msg);

/** `deno task start` with an embedded database of its own, and its API's URL once it listens. */
async function startInTerminal(env: Record<string, string>) {
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-ctrl-c-" });
  const t = await openTerminal([Deno.execPath(), "task", "start"], {
    cwd: root,
    env: { DISPATCH_DATA_DIR: dataDir, ADDR: "127.0.0.1:0", ...env },
    // The suite's own database is not this one's: no configuration, as a new user runs it.
    unset: ["DATABASE_URL", "DATABASE_SCHEMA"],
  });
  const started = await eventually(async () => {
    if ((await t.exitCode()) !== null) throw new Error(`exited early: ${await t.stderr()}`);
    return (await logLines(t)).find((l) => l.msg === "Dispatch started");
  }, { timeoutMs: 60_000, what: "Dispatch to start" });
  return {
    t,
    started,
    async close() {
      await t.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

const exited = (t: Terminal, timeoutMs: number) =>
  eventually(async () => (await t.exitCode()) ?? undefined, { timeoutMs, what: "the exit" });

Deno.test("one Ctrl+C on deno task start drains, closes the embedded database and exits 0", async () => {
  const run = await startInTerminal({});
  try {
    assert.match(run.started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(run.started.reachable, /from this machine only: set ADDR=:8080/);
    await run.t.press("C-c");
    assert.equal(await exited(run.t, 20_000), 0);
    const msgs = await messages(run.t);
    assert.ok(!msgs.includes("Second signal: exiting now"), msgs.join("\n"));
    // "Stopped" comes after the pool and the embedded database are closed.
    assert.deepEqual(msgs.slice(-2), ["Shutting down", "Stopped"]);
    const stderr = await run.t.stderr();
    assert.equal(stderr.replace(/^.*Task.*start.*\n/m, ""), "", stderr);
  } finally {
    await run.close();
  }
});

Deno.test("a second Ctrl+C pressed during a long drain exits at once with code 1", async () => {
  const held = Promise.withResolvers<void>();
  const receiver = startReceiver(async () => {
    await held.promise;
    return new Response("ok");
  });
  const run = await startInTerminal({ SHUTDOWN_TIMEOUT_MS: "60000" });
  try {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${run.started.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201, await res.text());
    };
    await post("/subscriptions", { url: receiver.url });
    await post("/events", { type: "a", data: {} });
    await receiver.waitFor(1);

    await run.t.press("C-c");
    await eventually(async () => (await messages(run.t)).includes("Shutting down") || undefined, {
      what: "the drain to begin",
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await run.t.exitCode(), null, "the first Ctrl+C drains, it does not exit");
    await run.t.press("C-c");
    assert.equal(await exited(run.t, 5_000), 1);
    assert.ok((await messages(run.t)).includes("Second signal: exiting now"));
  } finally {
    held.resolve();
    await run.close();
    await receiver.close();
  }
});
