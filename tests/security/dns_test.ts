import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { send } from "../../src/delivery/send.ts";
import { resolveWithDeno } from "../../src/security/dns.ts";
import { parseCidr } from "../../src/security/ip.ts";
import { targetCheck } from "../../src/security/ssrf.ts";
import { type DnsServer, startDnsServer, type Zone } from "../helpers/dns_server.ts";
import { startReceiver } from "../helpers/receiver.ts";

const zone: Zone = {
  "both.test": { A: ["93.184.215.14"], AAAA: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"] },
  "v4only.test": { A: ["93.184.215.14"] },
  "v6only.test": { AAAA: ["2a00::1"] },
  "halfbroken.test": { A: ["93.184.215.14"], AAAA: "SERVFAIL" },
  "broken.test": { A: "SERVFAIL", AAAA: "SERVFAIL" },
  "silent.test": { A: "no reply", AAAA: "no reply" },
  "hooks.test": { A: ["127.0.0.1"] },
};

/** Runs `body` with a resolver that asks the test's DNS server, then stops the server. */
async function withDns(
  body: (
    resolve: (host: string, signal?: AbortSignal) => Promise<string[]>,
    dns: DnsServer,
  ) => Promise<void>,
) {
  const dns = await startDnsServer(zone);
  try {
    await body(
      (host, signal = AbortSignal.timeout(5_000)) =>
        resolveWithDeno(host, signal, { nameServer: dns.nameServer }),
      dns,
    );
  } finally {
    await dns.close();
  }
}

Deno.test("resolveWithDeno returns a name's A and AAAA records from the server it is given", async () => {
  await withDns(async (resolve, dns) => {
    assert.deepEqual(await resolve("both.test"), [
      "93.184.215.14",
      "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]);
    assert.deepEqual(dns.asked.toSorted(), ["A both.test", "AAAA both.test"]);
  });
});

Deno.test("resolveWithDeno takes a name whose answer for one family is empty", async () => {
  await withDns(async (resolve) => {
    assert.deepEqual(await resolve("v4only.test"), ["93.184.215.14"]);
    assert.deepEqual(await resolve("v6only.test"), ["2a00::1"]);
  });
});

Deno.test("resolveWithDeno rejects a name that does not exist (NXDOMAIN)", async () => {
  await withDns(async (resolve, dns) => {
    await assert.rejects(resolve("missing.test"), { message: "no A or AAAA records" });
    assert.deepEqual(dns.asked.toSorted(), ["A missing.test", "AAAA missing.test"]);
  });
});

Deno.test("resolveWithDeno sees SERVFAIL as no records, as Deno reports it", async () => {
  await withDns(async (resolve) => {
    await assert.rejects(resolve("broken.test"), { message: "no A or AAAA records" });
    assert.deepEqual(await resolve("halfbroken.test"), ["93.184.215.14"]);
  });
});

Deno.test("resolveWithDeno gives up on a server that never answers when its signal aborts", async () => {
  await withDns(async (resolve, dns) => {
    await assert.rejects(resolve("silent.test", AbortSignal.timeout(200)), {
      name: "TimeoutError",
    });
    assert.ok(dns.asked.includes("A silent.test"), dns.asked.join(", "));
  });
});

Deno.test("the SSRF guard resolves with resolveWithDeno and refuses a name that resolves to 127.0.0.1", async () => {
  const receiver = startReceiver();
  try {
    await withDns(async (resolve) => {
      const check = targetCheck({ allowPrivateTargets: false, allowedTargetCidrs: [] }, resolve)!;
      const url = receiver.url.replace("127.0.0.1", "hooks.test");
      const result = await send({ url, headers: {}, body: "{}" }, {
        timeoutMs: 5_000,
        checkTarget: check,
      });
      assert.ok(result, "the attempt has a result");
      assert.equal(result.errorClass, "blocked");
      assert.equal(
        result.error,
        'Refused to deliver to "hooks.test" (127.0.0.1): loopback targets are not allowed ' +
          "(set ALLOW_PRIVATE_TARGETS=true or ALLOWED_TARGET_CIDRS)",
      );
      assert.equal(receiver.received.length, 0);

      const signal = AbortSignal.timeout(5_000);
      assert.deepEqual(await check("https://both.test/hook", signal), { address: "93.184.215.14" });
      assert.deepEqual(await check("https://missing.test/hook", signal), {
        errorClass: "dns",
        error: 'Could not resolve "missing.test": no A or AAAA records',
      });
    });
  } finally {
    await receiver.close();
  }
});

/** A server on `hostname` that counts what it is sent. */
function counter(hostname: string, port = 0) {
  let requests = 0;
  const server = Deno.serve({ hostname, port, onListen() {} }, () => {
    requests++;
    return new Response("ok");
  });
  return { port: server.addr.port, requests: () => requests, close: () => server.shutdown() };
}

const allowing = (cidr: string) => ({
  allowPrivateTargets: false,
  allowedTargetCidrs: [parseCidr(cidr) as Exclude<ReturnType<typeof parseCidr>, string>],
});

Deno.test({
  name:
    "a delivery goes to the address the guard checked, not to what a second look-up answers (DNS rebinding)",
  // Every 127.0.0.0/8 address is this machine's on Linux only.
  ignore: Deno.build.os !== "linux",
  async fn() {
    // This machine's name. The guard's look-up answers 127.0.0.2 (allowed); the system's resolver,
    // which fetch would ask again, answers from /etc/hosts: two answers for one name, as a
    // rebinding DNS server gives. (Deno.resolveDns reads /etc/hosts too, so the first answer
    // comes from the test rather than from the DNS test server.)
    const name = Deno.hostname();
    const { address: other } = await lookup(name, { family: 4 });
    const checked = other === "127.0.0.2" ? "127.0.0.3" : "127.0.0.2";
    const wrong = counter(other);
    const right = counter(checked, wrong.port);
    try {
      const check = targetCheck(allowing(`${checked}/32`), () => Promise.resolve([checked]))!;
      const result = await send({
        url: `http://${name}:${wrong.port}/hook`,
        headers: {},
        body: "{}",
      }, {
        timeoutMs: 5_000,
        checkTarget: check,
      });
      assert.equal(result?.statusCode, 200, JSON.stringify(result));
      assert.deepEqual([right.requests(), wrong.requests()], [1, 0]);
    } finally {
      await wrong.close();
      await right.close();
    }
  },
});

Deno.test("a *.localhost target allowed by ALLOWED_TARGET_CIDRS is delivered to loopback, with no look-up", async () => {
  const receiver = counter("127.0.0.1");
  try {
    const check = targetCheck(allowing("127.0.0.1/32"), () => {
      throw new Error("no look-up expected");
    })!;
    const result = await send({
      url: `http://hooks.localhost:${receiver.port}/hook`,
      headers: {},
      body: "{}",
    }, { timeoutMs: 5_000, checkTarget: check });
    assert.equal(result?.statusCode, 200, JSON.stringify(result));
    assert.equal(receiver.requests(), 1);
  } finally {
    await receiver.close();
  }
});
