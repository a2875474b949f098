/**
 * OAuth access tokens kept per subscription in this process: reused until
 * 30 s before they expire, one token request at a time per subscription,
 * and dropped when the subscription's auth changes.
 *
 * @module
 */
import type { AccessToken, TokenFailure } from "./oauth_token.ts";

/** A token is not used in its last 30 s: it could expire on the way. */
export const EXPIRY_MARGIN_MS = 30_000;
/** How long a token whose answer had no `expires_in` is kept. */
export const DEFAULT_TOKEN_LIFETIME_MS = 300_000;
const LIMIT = 10_000;

export interface TokenCache {
  /**
   * The token kept for `key` (a subscription) at `version` (its auth), or the
   * answer of one call of `request`, shared by every caller while it runs.
   * A failure is shared but not kept: the next call asks again.
   */
  get(
    key: string,
    version: string,
    request: () => Promise<AccessToken | TokenFailure>,
  ): Promise<AccessToken | TokenFailure>;
  /** Drops `token` if it is the one kept for `key` (the endpoint refused it). */
  forget(key: string, token: string): void;
}

interface Entry {
  version: string;
  answer: Promise<AccessToken | TokenFailure>;
  token: string | null;
  /** Null while the request runs. */
  usableUntil: number | null;
}

export function createTokenCache(options: { now?: () => number } = {}): TokenCache {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  return {
    get(key, version, request) {
      const kept = entries.get(key);
      if (
        kept?.version === version && (kept.usableUntil === null || now() < kept.usableUntil)
      ) return kept.answer;
      const askedAt = now();
      const drop = () => entries.get(key) === entry && entries.delete(key);
      const answer = request().then((answer) => {
        if (!("token" in answer)) {
          drop();
          return answer;
        }
        entry.token = answer.token;
        entry.usableUntil = askedAt +
          (answer.expiresInS === null
            ? DEFAULT_TOKEN_LIFETIME_MS
            : answer.expiresInS * 1000 - EXPIRY_MARGIN_MS);
        return answer;
      }, (error) => {
        drop();
        throw error;
      });
      const entry: Entry = { version, answer, token: null, usableUntil: null };
      entries.delete(key);
      // Maps iterate in insertion order, so the first key is the oldest.
      if (entries.size >= LIMIT) entries.delete(entries.keys().next().value!);
      entries.set(key, entry);
      return entry.answer;
    },
    forget(key, token) {
      if (entries.get(key)?.token === token) entries.delete(key);
    },
  };
}
