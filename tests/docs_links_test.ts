import assert from "node:assert/strict";
import { markdownPages, repoRoot } from "./helpers/docs.ts";

/** Markdown without its fenced blocks, whose `#` lines are shell comments, not headings. */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, "");

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replaceAll(" ", "-");
}

Deno.test("every relative link of the README and docs/ names a page and a heading that exist", async () => {
  const pages = (await markdownPages()).map((p) => ({ ...p, text: prose(p.text) }));
  const anchors = new Map(
    pages.map((
      p,
    ) => [p.path, new Set([...p.text.matchAll(/^#+ (.+)$/gm)].map((m) => anchorOf(m[1]!)))]),
  );
  let links = 0;
  for (const { path, text } of pages) {
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [file, anchor] = target!.split("#") as [string, string | undefined];
      const dest = file === ""
        ? path
        : new URL(file, new URL(path, repoRoot)).href.slice(repoRoot.href.length);
      if (!dest.endsWith(".md")) {
        // An image: a file that is there.
        await Deno.stat(new URL(dest, repoRoot));
        links++;
        continue;
      }
      assert.ok(anchors.has(dest), `${path}: ${target} names no page of README.md or docs/`);
      if (anchor) assert.ok(anchors.get(dest)!.has(anchor), `${path}: ${target} names no heading`);
      links++;
    }
  }
  assert.ok(links >= 30, `only ${links} links`);
});

Deno.test("the README links every page of docs/", async () => {
  const pages = await markdownPages();
  const readme = pages.find((p) => p.path === "README.md")!.text;
  for (const { path } of pages.filter((p) => p.path.startsWith("docs/"))) {
    assert.ok(readme.includes(`](${path})`), `README.md does not link ${path}`);
  }
});
