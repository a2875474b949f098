/**
 * The tests' one HTTP client: a `Send` reaches the app without a socket
 * (`TestApp.call`) or a running Dispatch (`overHttp`), and `apiClient` makes
 * calls that must succeed on either.
 *
 * @module
 */

/** The Authorization header that presents an API key. */
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Sends one request; a body that is not a string is sent as JSON. */
export type Send = (
  method: string,
  path: string,
  body?: unknown,
  headers?: HeadersInit,
) => Promise<Response>;

/** The request `Send` makes: JSON bodies encoded, with their content type unless one is given. */
export function requestInit(method: string, body?: unknown, headers?: HeadersInit): RequestInit {
  const h = new Headers(headers);
  if (body === undefined) return { method, headers: h, body: null };
  if (!h.has("content-type")) h.set("content-type", "application/json");
  return { method, headers: h, body: typeof body === "string" ? body : JSON.stringify(body) };
}

/** A `Send` to the Dispatch listening at `url`. */
export function overHttp(url: string): Send {
  return (method, path, body, headers) => fetch(url + path, requestInit(method, body, headers));
}

// deno-lint-ignore no-explicit-any -- tests inspect arbitrary JSON
export type Api = (method: string, path: string, body?: unknown) => Promise<any>;

/**
 * Calls that must succeed, with `key` if given: answers the JSON body (null
 * when empty); any other status throws, naming the call, status and body.
 */
export function apiClient(send: Send, options: { key?: string } = {}): Api {
  const headers = options.key === undefined ? {} : bearer(options.key);
  return async (method, path, body) => {
    const res = await send(method, path, body, headers);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
}
