/**
 * An HTTPS endpoint on 127.0.0.1 that requires a client certificate its CA
 * signed (Deno.serve cannot ask for one: `node:https` with `requestCert`).
 * Records the common name of each request's client certificate.
 *
 * @module
 */
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Pem } from "./certificates.ts";

export interface MtlsReceiver {
  url: string;
  /** The client certificate's CN of each request, in arrival order. */
  clients: string[];
  close(): Promise<void>;
}

export async function startMtlsReceiver(
  options: { server: Pem; clientCa: string },
): Promise<MtlsReceiver> {
  const clients: string[] = [];
  const server = https.createServer({
    cert: options.server.cert,
    key: options.server.key,
    ca: options.clientCa,
    requestCert: true,
    rejectUnauthorized: true,
  }, (req, res) => {
    clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/hook`,
    clients,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}
