/**
 * A DNS server on 127.0.0.1 (UDP, port 0) that answers from a table, for
 * testing the real resolver. dns-packet reads and writes the messages.
 *
 * @module
 */
import dgram from "node:dgram";
import dnsPacket from "dns-packet";

/** What the server does for one record type of a name it knows. */
export type Answer = readonly string[] | "SERVFAIL" | "no reply";

/**
 * Names the server knows, e.g. `{ "hooks.test": { A: ["127.0.0.1"] } }`.
 * A type a name does not list has no records (an empty answer); a name the
 * table does not list is NXDOMAIN.
 */
export type Zone = Record<string, { A?: Answer; AAAA?: Answer }>;

export interface DnsServer {
  /** For `Deno.resolveDns`' `nameServer` option. */
  nameServer: { ipAddr: string; port: number };
  /** Every question asked so far, as "TYPE name". */
  asked: string[];
  close(): Promise<void>;
}

// Response codes (RFC 1035, 4.1.1): the low four bits of the header's flags.
const responseCodes = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = dgram.createSocket("udp4");
  const asked: string[] = [];
  socket.on("message", (message, peer) => {
    const query = dnsPacket.decode(message);
    const question = query.questions?.[0];
    if (question === undefined) return;
    asked.push(`${question.type} ${question.name}`);
    const type = question.type as "A" | "AAAA";
    const answer = zone[question.name] === undefined
      ? "NXDOMAIN"
      : zone[question.name]![type] ?? [];
    if (answer === "no reply") return;
    const records = typeof answer === "string" ? [] : answer;
    const reply = dnsPacket.encode({
      type: "response",
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER |
        responseCodes[typeof answer === "string" ? answer : "NOERROR"],
      questions: query.questions ?? [],
      answers: records.map((data) => ({ type, name: question.name, ttl: 0, data })),
    });
    socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    nameServer: { ipAddr: "127.0.0.1", port: socket.address().port },
    asked,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
