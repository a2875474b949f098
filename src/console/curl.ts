/** A shell word: single-quoted, with its own single quotes escaped. */
function quote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The request of one attempt as a curl command. The signature is a
 * placeholder: the secret never reaches a page, so sign with your own copy.
 */
export function curlFor(
  attempt: { url: string; eventId: string; type: string; source: string | null; createdAt: Date },
  data: unknown,
): string {
  const body = JSON.stringify({
    id: attempt.eventId,
    type: attempt.type,
    source: attempt.source,
    timestamp: attempt.createdAt.toISOString(),
    data,
  });
  return [
    `curl -X POST ${quote(attempt.url)}`,
    `-H 'content-type: application/json'`,
    `-H ${quote(`webhook-id: ${attempt.eventId}`)}`,
    `-H "webhook-timestamp: $(date +%s)"`,
    `-H 'webhook-signature: v1,<signature: HMAC-SHA256 with the signing secret of the subscription>'`,
    `--data-raw ${quote(body)}`,
  ].join(" \\\n  ");
}
