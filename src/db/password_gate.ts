/**
 * The embedded database's front door: a loopback TCP listener that asks each
 * connection for a password (PostgreSQL's cleartext password exchange) and
 * relays the ones that give it to the database's unix socket.
 *
 * pglite-socket accepts any user and password, and anything on the machine
 * can reach a loopback port; the unix socket sits in a directory only this
 * user can open, so the gate is the only way in for other users' processes.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import net from "node:net";

/** A listening gate. */
export interface PasswordGate {
  /** The port the OS picked, or the one asked for. */
  port: number;
  /** Stops listening and cuts every connection, relayed or not. */
  close(): Promise<void>;
}

/** Options for {@linkcode startPasswordGate}. */
export interface PasswordGateOptions {
  hostname: string;
  /** 0 lets the OS pick a free port. */
  port: number;
  password: string;
  /** The unix socket to relay authenticated connections to. */
  socketPath: string;
}

const PROTOCOL_3 = 196608;
// Requests to encrypt, which the gate declines with "N" as a server without TLS does.
const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
// Far above any real start-up or password message: a longer one is not a client.
const MAX_MESSAGE_BYTES = 10_000;
// A connection that has not said its password by then is dropped.
const AUTH_TIMEOUT_MS = 10_000;

/** Listens on `hostname:port` and relays connections that give `password` to `socketPath`. */
export async function startPasswordGate(options: PasswordGateOptions): Promise<PasswordGate> {
  const expected = digest(Buffer.from(options.password));
  const open = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    authenticate(client, expected).then((admitted) => {
      if (admitted === null) return;
      const database = net.connect(options.socketPath);
      track(database);
      database.write(admitted);
      client.pipe(database);
      database.pipe(client);
      client.on("close", () => database.destroy());
      database.on("close", () => client.destroy());
      client.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      return closed;
    },
  };
}

/**
 * Reads the start-up and password messages. Resolves to the bytes to hand the
 * database (the start-up message, and whatever followed the password) with
 * the client paused, or to null once a client that is refused has been told
 * why and cut off.
 */
function authenticate(client: net.Socket, expected: Buffer): Promise<Buffer | null> {
  return new Promise((resolve) => {
    let buffer = Buffer.alloc(0);
    let startup: Buffer | null = null;
    const timer = setTimeout(() => refuse("08P01", "Authentication timed out"), AUTH_TIMEOUT_MS);
    const finish = (admitted: Buffer | null) => {
      clearTimeout(timer);
      client.off("data", onData);
      client.off("close", onClose);
      resolve(admitted);
    };
    const refuse = (code: string, message: string) => {
      client.end(errorResponse(code, message));
      finish(null);
    };
    const onClose = () => finish(null);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (startup === null) {
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        const code = buffer.readInt32BE(4);
        if (length < 8 || length > MAX_MESSAGE_BYTES) return refuse("08P01", "Invalid message");
        if (buffer.length < length) return;
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSS_REQUEST) {
          client.write("N");
        } else if (code === PROTOCOL_3) {
          startup = Buffer.from(message);
          client.write(passwordRequest);
        } else {
          // A cancel request, or a protocol this server does not speak.
          return refuse("08P01", "Unsupported request");
        }
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (buffer[0] !== 0x70 || length < 5 || length > MAX_MESSAGE_BYTES) {
        return refuse("28P01", "Password authentication failed: expected a password");
      }
      if (buffer.length < 1 + length) return;
      // The password ends with a NUL.
      const given = digest(buffer.subarray(5, length));
      if (!timingSafeEqual(given, expected)) {
        return refuse("28P01", "Password authentication failed");
      }
      client.pause();
      finish(Buffer.concat([startup, buffer.subarray(1 + length)]));
    };
    client.on("data", onData);
    client.on("close", onClose);
  });
}

/** SHA-256, so the comparison takes as long whatever the lengths. */
function digest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}

// AuthenticationCleartextPassword: "R", length 8, method 3.
const passwordRequest = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);

/** A FATAL ErrorResponse with its SQLSTATE, which clients report with the message. */
function errorResponse(code: string, message: string): Buffer {
  const body = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`);
  const head = Buffer.alloc(5);
  head.write("E");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
