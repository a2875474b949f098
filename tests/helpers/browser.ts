import puppeteer, { type Browser } from "puppeteer-core";

/** Debian's chromium on PATH, or null when there is none (CI installs it). */
export const chromium: string | null = findOnPath(["chromium", "chromium-browser"]);

function findOnPath(names: string[]): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    for (const name of names) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** Runs `fn` with a headless chromium on a fresh profile; both are gone afterwards. */
export async function withBrowser(fn: (browser: Browser) => Promise<void>): Promise<void> {
  if (chromium === null) throw new Error("No chromium on PATH: apt-get install -y chromium");
  const profile = await Deno.makeTempDir({ prefix: "dispatch-chromium-" });
  try {
    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: profile,
      // Starting takes 4 to 8 s alone, but once took more than puppeteer's 30 s beside the
      // parallel suite on two cores.
      timeout: 90_000,
      // Nothing of chromium's own talks to the network, so every request seen is the page's.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      await fn(browser);
    } finally {
      await browser.close();
    }
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}
