/**
 * The statements that change API keys: create, revoke, and the read of the
 * key table that also records when keys were last used.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { apiKeyColumns, type ApiKeyRow, type KeyScope, type StoredKey } from "../views/api_keys.ts";

export interface NewApiKey {
  id: string;
  /** SHA-256 of the token: the token itself is never stored. */
  tokenSha256: Uint8Array;
  scope: KeyScope;
  tenant_id: string | null;
  description: string | null;
  expires_at: Date | null;
}

export async function insertApiKey(sql: Sql, key: NewApiKey): Promise<ApiKeyRow> {
  const [row] = await sql<ApiKeyRow[]>`
    INSERT INTO api_keys (id, token_sha256, scope, tenant_id, description, expires_at)
    VALUES (${key.id}, ${key.tokenSha256}, ${key.scope}, ${key.tenant_id}, ${key.description},
      ${key.expires_at})
    RETURNING ${sql.unsafe(apiKeyColumns)}`;
  return row!;
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
    )
    SELECT id, token_sha256, scope, tenant_id, expires_at
    FROM api_keys WHERE expires_at IS NULL OR expires_at > now()`;
}
