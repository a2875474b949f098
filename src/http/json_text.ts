/**
 * Parts of a JSON document as their source text. An event's `data` is
 * stored and delivered as the producer wrote it: re-encoding the parsed value
 * (or printing jsonb) can make it longer than what was accepted (`1e308`
 * prints as 309 digits from jsonb, `1e20` as 21 from JavaScript).
 *
 * Every function here takes text that `JSON.parse` accepted.
 *
 * @module
 */

/** Where a value starts and ends (exclusive) in the document. */
export interface Span {
  start: number;
  end: number;
}

/**
 * The members of the object at `at`, by key. A repeated key keeps its last
 * value, as `JSON.parse` does. Empty when the value at `at` is not an object.
 */
export function objectMembers(text: string, at: number): Map<string, Span> {
  const members = new Map<string, Span>();
  let i = skipSpace(text, at);
  if (text[i] !== "{") return members;
  i = skipSpace(text, i + 1);
  while (text[i] === '"') {
    const keyEnd = valueEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the colon
    const end = valueEnd(text, start);
    members.set(key, { start, end });
    i = skipSpace(text, end);
    if (text[i] === ",") i = skipSpace(text, i + 1);
  }
  return members;
}

/** The elements of the array at `at`, in order. Empty when the value at `at` is not an array. */
export function arrayElements(text: string, at: number): Span[] {
  const elements: Span[] = [];
  let i = skipSpace(text, at);
  if (text[i] !== "[") return elements;
  i = skipSpace(text, i + 1);
  while (i < text.length && text[i] !== "]") {
    const end = valueEnd(text, i);
    elements.push({ start: i, end });
    i = skipSpace(text, end);
    if (text[i] === ",") i = skipSpace(text, i + 1);
  }
  return elements;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  return i;
}

/** The end of the value that starts at `i`. */
function valueEnd(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return stringEnd(text, i);
  if (first !== "{" && first !== "[") {
    while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++;
    return i;
  }
  // Jumps from one quote or bracket to the next: a large value is not walked character by character.
  const structural = /["{}[\]]/g;
  structural.lastIndex = i;
  let depth = 0;
  for (let m = structural.exec(text); m !== null; m = structural.exec(text)) {
    const c = m[0];
    if (c === '"') structural.lastIndex = stringEnd(text, m.index);
    else if (c === "{" || c === "[") depth++;
    else if (--depth === 0) return m.index + 1;
  }
  return text.length;
}

/** The end of the string whose opening quote is at `i`, past its closing quote. */
function stringEnd(text: string, i: number): number {
  for (let q = text.indexOf('"', i + 1); q !== -1; q = text.indexOf('"', q + 1)) {
    let backslashes = 0;
    while (text[q - 1 - backslashes] === "\\") backslashes++;
    if (backslashes % 2 === 0) return q + 1;
  }
  return text.length;
}
