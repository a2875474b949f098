/**
 * The curl commands of the seed's README (the document Dispatch was
 * specified from), of our own quick start and of the tenants walk-through in
 * docs/tenants.md, run word for word with the real curl against a real
 * Dispatch process.
 */
import assert from "node:assert/strict";
import { spawnTaskStart } from "../helpers/process.ts";

const seedCopy = new URL("../fixtures/seed_readme.md", import.meta.url);
const readme = new URL("../../README.md", import.meta.url);
const tenantsPage = new URL("../../docs/tenants.md", import.meta.url);

/**
 * The curl commands of the fenced shell blocks in a markdown text, each
 * exactly as written: a command goes on after a trailing backslash and
 * inside an open single quote (the seed's JSON bodies span lines).
 */
function curlCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const [, block] of markdown.matchAll(/^```(?:bash|sh)\n([\s\S]*?)^```/gm)) {
    let open: string | null = null;
    for (const line of block!.split("\n")) {
      if (open === null && !line.startsWith("curl ")) continue;
      open = open === null ? line : `${open}\n${line}`;
      const quotes = open.split("'").length - 1;
      if (quotes % 2 === 0 && !line.endsWith("\\")) {
        commands.push(open);
        open = null;
      }
    }
  }
  return commands;
}

/** From a level-2 heading to the next one. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no "${heading}" section`);
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

interface Answer {
  command: string;
  status: number;
  body: string;
}

/**
 * Runs each command in bash as written, the host and port swapped for the
 * test's; curl is wrapped only to report the status (a later `-w` wins).
 */
async function runCurls(commands: string[], url: string): Promise<Answer[]> {
  const host = new URL(url).host;
  const answers: Answer[] = [];
  for (const command of commands) {
    const script = `curl() { command curl -sS "$@" -w '\\n%{http_code}'; }\n` +
      command.replaceAll("localhost:8080", host);
    const out = await new Deno.Command("bash", { args: ["-c", script], stdin: "null" }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `${command}: ${new TextDecoder().decode(out.stderr)}`);
    const cut = text.lastIndexOf("\n");
    answers.push({ command, status: Number(text.slice(cut + 1)), body: text.slice(0, cut) });
  }
  return answers;
}

function assertAllSucceeded(answers: Answer[]) {
  for (const a of answers) {
    assert.ok(a.status >= 200 && a.status < 300, `${a.command}\nanswered ${a.status}: ${a.body}`);
  }
}

Deno.test("the fixture is the seed's README as shared with the team", async () => {
  const shared = new URL("../../../shared/seed/README.md", import.meta.url);
  const original = await Deno.readTextFile(shared).catch(() => null);
  if (original === null) return; // a clone without shared/ beside it
  assert.equal(await Deno.readTextFile(seedCopy), original);
});

Deno.test("on deno task start the seed's curl flow and then the README's quick start both succeed word for word", async () => {
  const seed = curlCommands(section(await Deno.readTextFile(seedCopy), "## API"));
  const quickStart = curlCommands(section(await Deno.readTextFile(readme), "## Quick start"));
  assert.equal(seed.length, 6, seed.join("\n"));
  assert.ok(quickStart.length >= 6, quickStart.join("\n"));

  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-readme-" });
  const p = await spawnTaskStart(dataDir);
  try {
    const seedAnswers = await runCurls(seed, p.url);
    assertAllSucceeded(seedAnswers);
    assert.deepEqual(seedAnswers.map((a) => a.status), [201, 200, 200, 201, 200, 204]);
    const created = JSON.parse(seedAnswers[3]!.body);
    assert.equal(created.id, "sub_123");
    assert.equal(created.secret, "my-secret-key");

    // One after the other on one database: the README's ids are its own.
    const quickAnswers = await runCurls(quickStart, p.url);
    assertAllSucceeded(quickAnswers);
    assert.equal(quickAnswers.at(-1)!.status, 204);

    // A body without Content-Length is read and re-wrapped by the body limit.
    const chunked = await runCurls([
      `curl -s localhost:8080/events -H 'content-type: application/json' -H 'transfer-encoding: chunked' -d '{"type":"a","data":{}}'`,
    ], p.url);
    assert.equal(chunked[0]!.status, 201);
  } finally {
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    await Deno.remove(dataDir, { recursive: true });
  }
  // Only Dispatch's own JSON lines after deno task's own: no runtime warning (DELETE and chunked
  // bodies caused one).
  assert.equal(p.stderr().replace(/^.*Task.*start.*\n/, ""), "");
});

Deno.test("the tenants walk-through of docs/tenants.md runs as written: a tenant key sees its own and 404 for another's", async () => {
  const markdown = await Deno.readTextFile(tenantsPage);
  const blocks = [...markdown.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  const start = blocks.find((b) => b.includes("deno task start"))!;
  const adminKey = /DISPATCH_API_KEYS=(\S+)/.exec(start)![1]!;
  const script = blocks.find((b) => b.includes("TENANT_KEY="))!;
  const dataDir = await Deno.makeTempDir({ prefix: "dispatch-readme-tenants-" });
  const p = await spawnTaskStart(dataDir, { DISPATCH_API_KEYS: adminKey });
  try {
    // Each curl's status goes to stderr, so the script's own output stays as a reader sees it.
    const wrapped = `curl() { command curl -sS "$@" -w '\\n%{stderr}%{http_code}\\n'; }\n` +
      script.replaceAll("localhost:8080", new URL(p.url).host);
    const out = await new Deno.Command("bash", {
      args: ["-eo", "pipefail", "-c", wrapped],
      stdin: "null",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(out.code, 0, text(out.stderr));
    const statuses = text(out.stderr).trim().split("\n").map(Number);
    assert.deepEqual(statuses, [201, 201, 201, 201, 200, 200, 404, 200]);
    const bodies = text(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
    const [acme, , event, list, deliveries, missing, tenant] = bodies;
    assert.equal(acme.tenant_id, "acme");
    assert.equal(event.deliveries.total, 1);
    assert.deepEqual(list.data.map((s: { id: string }) => s.id), ["sub_acme"]);
    assert.deepEqual(deliveries.data.map((d: { subscription_id: string }) => d.subscription_id), [
      "sub_acme",
    ]);
    assert.deepEqual(missing.error, {
      code: "not_found",
      message: 'Subscription "sub_globex" does not exist',
    });
    assert.equal(tenant.subscriptions, 1);
    assert.equal(tenant.events, 1);
  } finally {
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    await Deno.remove(dataDir, { recursive: true });
  }
});
