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
