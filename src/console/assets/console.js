// Progressive enhancement only: every page works without this file.
"use strict";

// Lists refresh live: the page's own URL is fetched again and its main element swapped,
// unless the user is typing or has ticked something there.
const main = document.querySelector("main[data-live]");
if (main) {
  setInterval(async () => {
    if (document.hidden) return;
    const busy = main.contains(document.activeElement) &&
        document.activeElement !== main || main.querySelector("input:checked");
    if (busy) return;
    try {
      const res = await fetch(location.href, { credentials: "same-origin" });
      if (!res.ok || res.redirected) return;
      const next = new DOMParser().parseFromString(await res.text(), "text/html")
        .querySelector("main");
      if (next) main.innerHTML = next.innerHTML;
    } catch {
      // Offline for a moment: the next round tries again.
    }
  }, 3000);
}

// "Copy" buttons copy the text of the element they name.
document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  await navigator.clipboard.writeText(source.textContent);
  button.textContent = "Copied";
});

// "Select all" ticks every box of its form.
document.addEventListener("change", (e) => {
  if (!e.target.matches("input[data-select-all]")) return;
  for (const box of e.target.form.querySelectorAll("input[name=id]")) {
    box.checked = e.target.checked;
  }
});
