/**
 * Where HTTP/1.1 requests begin and end in the bytes a client sends, no more
 * than that: enough to time how long a client takes to send a request's head.
 *
 * @module
 */

/** What the bytes seen so far are. */
export type Phase = "head" | "between" | "body" | "unframed";

// Past Deno's own limit (about 64 KiB) the server refuses a head anyway, so the framing stops
// looking and lets it.
const MAX_HEAD_BYTES = 80 * 1024;
const CR = 13;
const LF = 10;

/**
 * Follows one connection's requests: `push` each chunk the client sends, and
 * read `phase`. A connection starts in `head`; `between` is after a request
 * and before the next one's first byte; `unframed` gives up (HTTP/2, or a
 * head or chunk line past any limit): the server judges what follows.
 */
export class RequestFraming {
  phase: Phase = "head";
  #head: number[] = [];
  /** Bytes on the head's current line, carriage returns aside. */
  #lineLength = 0;
  #remaining = 0;
  #chunked = false;
  /** Inside a chunked body: the bytes of a chunk-size or trailer line read so far. */
  #line: number[] | null = null;
  #trailer = false;

  push(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length && this.phase !== "unframed";) {
      const byte = bytes[i]!;
      if (this.phase === "between") this.phase = "head";
      if (this.phase === "head") {
        this.#headByte(byte);
        i++;
      } else if (this.#line === null && this.#remaining > 0) {
        const take = Math.min(this.#remaining, bytes.length - i);
        this.#remaining -= take;
        i += take;
        if (this.#remaining === 0) this.#endOfData();
      } else {
        this.#lineByte(byte);
        i++;
      }
    }
  }

  /** A head ends at its first empty line (CRLF or a bare LF, as servers accept). */
  #headByte(byte: number): void {
    this.#head.push(byte);
    if (this.#head.length > MAX_HEAD_BYTES) return void (this.phase = "unframed");
    if (byte === CR) return;
    if (byte !== LF) return void this.#lineLength++;
    const ended = this.#lineLength === 0;
    this.#lineLength = 0;
    if (!ended) return;
    const head = new TextDecoder().decode(new Uint8Array(this.#head));
    this.#head = [];
    // A blank line before a request line is allowed (RFC 9112, 2.2).
    if (head.trim() === "") return void (this.phase = "between");
    if (head.startsWith("PRI * HTTP/2.0")) return void (this.phase = "unframed");
    this.#chunked = /^transfer-encoding:.*chunked/im.test(head);
    const length = /^content-length:\s*(\d+)\s*$/im.exec(head)?.[1];
    if (this.#chunked) {
      this.phase = "body";
      this.#line = [];
      this.#trailer = false;
    } else if (length !== undefined && Number(length) > 0) {
      this.phase = "body";
      this.#remaining = Number(length);
    } else {
      this.phase = "between";
    }
  }

  /** A chunked body's chunk-size lines and trailer lines, byte by byte. */
  #lineByte(byte: number): void {
    const line = this.#line ??= [];
    line.push(byte);
    if (line.length > MAX_HEAD_BYTES) return void (this.phase = "unframed");
    if (byte !== LF) return;
    const text = new TextDecoder().decode(new Uint8Array(line)).trim();
    this.#line = [];
    if (this.#trailer) {
      if (text === "") this.#endOfBody();
      return;
    }
    const size = parseInt(text.split(";")[0]!, 16);
    if (Number.isNaN(size)) return void (this.phase = "unframed");
    if (size === 0) {
      this.#trailer = true;
      return;
    }
    // The chunk's data and the line break after it.
    this.#remaining = size + 2;
    this.#line = null;
  }

  #endOfData(): void {
    if (this.#chunked) this.#line = [];
    else this.#endOfBody();
  }

  #endOfBody(): void {
    this.phase = "between";
    this.#line = null;
    this.#chunked = false;
  }
}
