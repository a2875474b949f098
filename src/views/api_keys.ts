import type { Sql } from "../db/pool.ts";

export const keyScopes = ["admin", "publish", "tenant"] as const;
export type KeyScope = (typeof keyScopes)[number];

/** A managed API key as the API shows it: never with its token, which is not stored. */
export interface ApiKeyRow {
  id: string;
  scope: KeyScope;
  tenant_id: string | null;
  description: string | null;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
}

/** What each process keeps in memory to authenticate requests. */
export interface StoredKey {
  id: string;
  token_sha256: Uint8Array;
  scope: KeyScope;
  tenant_id: string | null;
  expires_at: Date | null;
}

export const apiKeyColumns =
  "id, scope, tenant_id, description, created_at, expires_at, last_used_at";

/** Oldest first; `next` is the sequence number to continue after, if more remain. */
export async function listApiKeys(
  sql: Sql,
  options: { limit: number; after?: number | undefined },
): Promise<{ keys: ApiKeyRow[]; next: number | null }> {
  const rows = await sql<(ApiKeyRow & { seq: number })[]>`
    SELECT seq, ${sql.unsafe(apiKeyColumns)} FROM api_keys
    WHERE seq > ${options.after ?? 0} ORDER BY seq LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return { keys: page.map(({ seq: _seq, ...key }) => key), next: more ? page.at(-1)!.seq : null };
}
