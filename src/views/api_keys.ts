import type { Sql } from "../db/pool.ts";

export type KeyScope = "admin" | "publish" | "tenant";

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

export interface NewApiKey {
  id: string;
  /** SHA-256 of the token: the token itself is never stored. */
  tokenSha256: Uint8Array;
  scope: KeyScope;
  tenant_id: string | null;
  description: string | null;
  expires_at: Date | null;
}

/** What each process keeps in memory to authenticate requests. */
export interface StoredKey {
  id: string;
  token_sha256: Uint8Array;
  scope: KeyScope;
  tenant_id: string | null;
  expires_at: Date | null;
}

const columns = "id, scope, tenant_id, description, created_at, expires_at, last_used_at";

export async function insertApiKey(sql: Sql, key: NewApiKey): Promise<ApiKeyRow> {
  const [row] = await sql<ApiKeyRow[]>`
    INSERT INTO api_keys (id, token_sha256, scope, tenant_id, description, expires_at)
    VALUES (${key.id}, ${key.tokenSha256}, ${key.scope}, ${key.tenant_id}, ${key.description},
      ${key.expires_at})
    RETURNING ${sql.unsafe(columns)}`;
  return row!;
}

/** Oldest first; `next` is the sequence number to continue after, if more remain. */
export async function listApiKeys(
  sql: Sql,
  options: { limit: number; after?: number | undefined },
): Promise<{ keys: ApiKeyRow[]; next: number | null }> {
  const rows = await sql<(ApiKeyRow & { seq: number })[]>`
    SELECT seq, ${sql.unsafe(columns)} FROM api_keys
    WHERE seq > ${options.after ?? 0} ORDER BY seq LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return { keys: page.map(({ seq: _seq, ...key }) => key), next: more ? page.at(-1)!.seq : null };
}

/** Revokes a key: it is gone from the table. Returns false when absent. */
export async function deleteApiKey(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`DELETE FROM api_keys WHERE id = ${id} RETURNING 1`;
  return rows.length > 0;
}

/**
 * Every key that has not expired, in one statement that also records when
 * the given keys were last used (each process reports its own, coarsely).
 */
export async function readKeyTable(
  sql: Sql,
  used: readonly { id: string; at: Date }[],
): Promise<StoredKey[]> {
  return await sql<StoredKey[]>`
    WITH used AS (
      UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
      FROM unnest(${used.map((u) => u.id)}::text[],
        ${used.map((u) => u.at.toISOString())}::timestamptz[]) AS u(id, at)
      WHERE k.id = u.id
      RETURNING 1
    )
    SELECT id, token_sha256, scope, tenant_id, expires_at, (SELECT count(*) FROM used) AS touched
    FROM api_keys WHERE expires_at IS NULL OR expires_at > now()`;
}
