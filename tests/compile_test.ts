/**
 * `deno compile` as the Dockerfile's build stage runs it: its COPY lines
 * bring the same files into a fresh folder, then its RUN lines run there.
 * This network cannot download the runtime the executable is built on
 * (denort), so DENORT_BIN points at a stand-in: the packing step runs in
 * full, which proves the module graph (npm packages, embedded migrations)
 * compiles, but the executable is not run.
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

/** The build stage: from its FROM to the next one. */
function buildStage(dockerfile: string): string[] {
  const lines = dockerfile.split("\n").map((l) => l.trim()).filter((l) => !l.startsWith("#"));
  const from = lines.findIndex((l) => /^FROM denoland\/deno:/.test(l));
  const next = lines.findIndex((l, i) => i > from && l.startsWith("FROM "));
  assert.ok(from >= 0 && next > from, "a denoland/deno build stage and a runtime stage");
  return lines.slice(from + 1, next).filter(Boolean);
}

Deno.test("the Dockerfile's build stage compiles Dispatch into dist/dispatch", async () => {
  const dockerfile = await Deno.readTextFile(`${root}/Dockerfile`);
  const stage = buildStage(dockerfile);
  assert.ok(stage.includes("RUN deno task compile"), stage.join("\n"));
  assert.match(dockerfile, /^COPY --from=build \/app\/dist\/dispatch /m);

  const dir = await Deno.makeTempDir({ prefix: "dispatch-compile-" });
  try {
    let output = "";
    for (const line of stage) {
      const [op, ...words] = line.split(/\s+/);
      if (op === "COPY") {
        const dest = words.pop()!;
        for (const source of words) {
          const target = dest.endsWith("/") && dest !== "./" ? dest : source;
          const cp = new Deno.Command("cp", {
            args: ["-r", `${root}/${source}`, `${dir}/${target}`],
          });
          assert.ok((await cp.output()).success, line);
        }
      } else if (op === "RUN") {
        const out = await new Deno.Command("sh", {
          args: ["-c", words.join(" ")],
          cwd: dir,
          env: { DENORT_BIN: "/usr/bin/true", NO_COLOR: "1" },
          stdin: "null",
        }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `${line}\n${text}`);
        output += text;
      }
    }
    const binary = await Deno.stat(`${dir}/dist/dispatch`);
    assert.ok(binary.isFile && (binary.mode! & 0o111) !== 0, "an executable");
    // The migrations are imported as text, so they are inside, not beside it.
    assert.match(output, /── migrations\/\* /);
    assert.match(output, /── main\.ts /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
