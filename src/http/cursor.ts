import { validationError } from "./error_handler.ts";

/** Opaque page cursors wrap a sequence number. */
export function encodeCursor(seq: number | null): string | null {
  return seq === null ? null : btoa(`c${seq}`).replaceAll("=", "");
}

export function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  let text = "";
  try {
    text = atob(cursor);
  } catch { /* reported below */ }
  const match = /^c(\d{1,15})$/.exec(text);
  if (!match) {
    const message = `"${cursor}" is not a cursor: use next_cursor from a previous page`;
    throw validationError([{ path: ["cursor"], message }], "query");
  }
  return Number(match[1]);
}
