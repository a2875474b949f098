/**
 * Managed API keys as each process sees them: a table of every key's
 * SHA-256, a {@linkcode FreshSnapshot} no older than
 * {@linkcode KEY_TABLE_MAX_AGE_MS}, so a revoked key is refused by every
 * process within that bound.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { FreshSnapshot } from "../fresh_snapshot.ts";
import type { StoredKey } from "../views/api_keys.ts";

/** A lookup never uses a table read longer ago than this. */
export const KEY_TABLE_MAX_AGE_MS = 1000;

/** `last_used_at` is written at most this often per key and process. */
export const LAST_USED_EVERY_MS = 60_000;

/** SHA-256 of a token: what is stored and what is looked up. */
export function tokenDigest(token: string): Uint8Array {
  return createHash("sha256").update(token).digest();
}

/** A new token: `dk_` and 32 random bytes in base64url. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `dk_${
    btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "")
  }`;
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export interface ApiKeyTableOptions {
  /** Default {@linkcode KEY_TABLE_MAX_AGE_MS}. */
  maxAgeMs?: number;
  /** Default {@linkcode LAST_USED_EVERY_MS}. */
  lastUsedEveryMs?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

export class ApiKeyTable {
  #table: FreshSnapshot<Map<string, StoredKey>>;
  #lastUsedEveryMs: number;
  #now: () => number;
  /** Uses not written yet, and when each key's use was last reported. */
  #unreported = new Map<string, Date>();
  #reportedAt = new Map<string, number>();

  /**
   * `load` reads every unexpired key and, in the same statement, records
   * the uses it is given (see `readKeyTable` in `src/engine/api_keys.ts`).
   */
  constructor(
    load: (used: { id: string; at: Date }[]) => Promise<StoredKey[]>,
    options: ApiKeyTableOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#table = new FreshSnapshot(async () => {
      const used = [...this.#unreported].map(([id, at]) => ({ id, at }));
      this.#unreported.clear();
      try {
        const keys = await load(used);
        return new Map(keys.map((k) => [hex(k.token_sha256), k]));
      } catch (err) {
        // Reported with the next read instead.
        for (const u of used) if (!this.#unreported.has(u.id)) this.#unreported.set(u.id, u.at);
        throw err;
      }
    }, { maxAgeMs: options.maxAgeMs ?? KEY_TABLE_MAX_AGE_MS, now: this.#now });
    this.#lastUsedEveryMs = options.lastUsedEveryMs ?? LAST_USED_EVERY_MS;
  }

  /**
   * The unexpired key whose token has this SHA-256, from a table read at
   * most `maxAgeMs` ago; undefined for none. Throws when the table is too
   * old and cannot be read.
   */
  async find(digest: Uint8Array): Promise<StoredKey | undefined> {
    const key = (await this.#table.get()).get(hex(digest));
    // The map finds it by digest; the digests are then compared in constant time.
    if (key === undefined || !timingSafeEqual(key.token_sha256, digest)) return undefined;
    if (this.#expired(key)) return undefined;
    this.#used(key.id);
    return key;
  }

  /**
   * The unexpired key of this id, from a table as fresh as {@linkcode find}'s:
   * a console session signed in with a key ends when the key is revoked.
   */
  async findId(id: string): Promise<StoredKey | undefined> {
    const key = [...(await this.#table.get()).values()].find((k) => k.id === id);
    return key === undefined || this.#expired(key) ? undefined : key;
  }

  #expired(key: StoredKey): boolean {
    return key.expires_at !== null && key.expires_at.getTime() <= this.#now();
  }

  /** Forgets a key at once in this process (it was revoked here). */
  forget(id: string): void {
    const byDigest = this.#table.peek();
    for (const [digest, key] of byDigest ?? []) {
      if (key.id === id) byDigest!.delete(digest);
    }
  }

  /** Notes a use; at most once per `lastUsedEveryMs` it is written, with a read of the table. */
  #used(id: string): void {
    const now = this.#now();
    if (now - (this.#reportedAt.get(id) ?? -Infinity) < this.#lastUsedEveryMs) return;
    this.#reportedAt.set(id, now);
    this.#unreported.set(id, new Date(now));
    // Written now (after a read under way, which took its list already) rather than with the
    // next read, which may not come for a while.
    this.#table.settled()
      .then(() => this.#unreported.size > 0 ? this.#table.read() : undefined).catch(() => {});
  }
}
