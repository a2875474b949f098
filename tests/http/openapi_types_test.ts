import assert from "node:assert/strict";
import openapiTS, { astToString } from "openapi-typescript";
import { json, testApp } from "../helpers/app.ts";
import { markdownPages } from "../helpers/docs.ts";

interface Curl {
  command: string;
  method: string;
  path: string;
  body?: string;
}

/** The curl commands of a markdown text, line continuations joined. */
function curlsOf(markdown: string): Curl[] {
  return markdown.replaceAll("\\\n", " ").split("\n").filter((l) => l.startsWith("curl ")).map(
    (command) => {
      const path = /localhost:8080(\/[^\s'?]*)/.exec(command)?.[1];
      assert.ok(path, `no localhost:8080 URL in: ${command}`);
      const body = /\s-d '([^']*)'/.exec(command)?.[1];
      const method = /\s-X (\w+)/.exec(command)?.[1] ?? (body === undefined ? "GET" : "POST");
      return { command, method: method.toLowerCase(), path, ...(body ? { body } : {}) };
    },
  );
}

/** The body of the README's "What an endpoint receives". */
function readmeWebhookBody(readme: string): string {
  const section = readme.slice(readme.indexOf("## What an endpoint receives"));
  const body = /```json\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(body, "no JSON block under What an endpoint receives");
  return body;
}

function templateOf(paths: string[], path: string): string | undefined {
  return paths.find((t) => new RegExp(`^${t.replaceAll(/\{\w+\}/g, "[^/]+")}$`).test(path));
}

Deno.test("the request bodies of the README and docs/ type-check against types generated from /openapi.json", async () => {
  const t = await testApp();
  const dir = await Deno.makeTempDir({ prefix: "dispatch-openapi-types-" });
  try {
    const doc = await json(await t.call("GET", "/openapi.json"));
    await Deno.writeTextFile(`${dir}/api.d.ts`, astToString(await openapiTS(doc)));

    const docs = await markdownPages();
    const readme = docs.find((d) => d.path === "README.md")!.text;
    assert.ok(curlsOf(readme).filter((c) => c.body).length >= 2, "the README has curl bodies");
    const curls = docs.flatMap((d) => curlsOf(d.text));
    const checks = [
      'import type { paths, webhooks } from "./api.d.ts";',
      `const delivered: webhooks["event"]["post"]["requestBody"]["content"]["application/json"] = ${
        readmeWebhookBody(readme)
      };`,
    ];
    for (const [i, curl] of curls.entries()) {
      const template = templateOf(Object.keys(doc.paths), curl.path);
      assert.ok(template, `undocumented path: ${curl.command}`);
      assert.ok(doc.paths[template][curl.method], `undocumented method: ${curl.command}`);
      if (curl.body === undefined) continue;
      const type =
        `NonNullable<paths["${template}"]["${curl.method}"]["requestBody"]>["content"]["application/json"]`;
      checks.push(`// ${curl.command}\nconst body${i}: ${type} = ${curl.body};`);
    }
    await Deno.writeTextFile(`${dir}/readme.ts`, checks.join("\n"));

    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--no-config", "--quiet", `${dir}/readme.ts`],
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
    await t.close();
  }
});
