/** The repository's root, which README.md and docs/ are read from. */
export const repoRoot = new URL("../../", import.meta.url);

/** README.md and every page of docs/, as paths from the root, with their text. */
export async function markdownPages(): Promise<{ path: string; text: string }[]> {
  const paths = ["README.md"];
  for await (const entry of Deno.readDir(new URL("docs/", repoRoot))) {
    if (entry.isFile && entry.name.endsWith(".md")) paths.push(`docs/${entry.name}`);
  }
  return await Promise.all(
    paths.sort().map(async (path) => ({
      path,
      text: await Deno.readTextFile(new URL(path, repoRoot)),
    })),
  );
}
