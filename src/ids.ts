const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * A prefixed id whose first part is time-ordered (so ids sort roughly by
 * creation) and whose rest is 80 random bits.
 */
export function newId(prefix: "evt" | "sub" | "key"): string {
  const time = Date.now().toString(36).padStart(9, "0");
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (const b of bytes) rand += alphabet[b % 36];
  return `${prefix}_${time}${rand}`;
}

/** `bytes` random bytes as hex, for a password that lasts as long as the process or less. */
export function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}
