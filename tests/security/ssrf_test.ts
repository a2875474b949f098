import assert from "node:assert/strict";
import type { AttemptFailure, CheckedTarget } from "../../src/delivery/send.ts";
import { type Cidr, parseCidr, parseIp } from "../../src/security/ip.ts";
import {
  classifyAddress,
  literalAddresses,
  type Resolver,
  targetCheck,
  type TargetPolicy,
  urlRefusal,
} from "../../src/security/ssrf.ts";

const refusePrivate: TargetPolicy = { allowPrivateTargets: false, allowedTargetCidrs: [] };
const allowing = (...ranges: string[]): TargetPolicy => ({
  allowPrivateTargets: false,
  allowedTargetCidrs: ranges.map((r) => parseCidr(r) as Cidr),
});

const kind = (text: string) => classifyAddress(parseIp(text)!);

Deno.test("classifyAddress names every non-public IPv4 range", () => {
  for (
    const [address, expected] of [
      ["127.0.0.1", "loopback"],
      ["127.255.255.254", "loopback"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "carrier-grade NAT"],
      ["100.127.255.255", "carrier-grade NAT"],
      ["169.254.169.254", "link-local"],
      ["224.0.0.1", "multicast"],
      ["239.255.255.250", "multicast"],
      ["0.0.0.0", "unspecified"],
      ["0.1.2.3", "unspecified"],
      ["255.255.255.255", "broadcast"],
      ["240.0.0.1", "reserved"],
      ["198.18.0.1", "reserved"],
      ["192.0.2.1", "reserved"],
    ] as const
  ) {
    assert.equal(kind(address), expected, address);
  }
});

Deno.test("classifyAddress finds public IPv4 addresses next to private ranges public", () => {
  for (
    const address of [
      "8.8.8.8",
      "1.1.1.1",
      "172.15.255.255",
      "172.32.0.0",
      "100.63.255.255",
      "100.128.0.0",
      "169.253.255.255",
      "192.169.0.0",
      "223.255.255.255",
      "11.0.0.0",
      "126.255.255.255",
      "128.0.0.0",
    ]
  ) {
    assert.equal(kind(address), null, address);
  }
});

Deno.test("classifyAddress names IPv6 ranges and looks through embedded IPv4 addresses", () => {
  for (
    const [address, expected] of [
      ["::1", "loopback"],
      ["::", "unspecified"],
      ["fc00::1", "private"],
      ["fd12:3456:789a::1", "private"],
      ["fe80::1", "link-local"],
      ["febf:ffff::1", "link-local"],
      ["ff02::1", "multicast"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["::ffff:169.254.169.254", "link-local"],
      ["::ffff:10.0.0.1", "private"],
      ["64:ff9b::10.0.0.1", "private"],
      ["64:ff9b::169.254.169.254", "link-local"],
      ["2002:7f00:1::", "loopback"],
      ["::127.0.0.1", "reserved"],
      ["2001:db8::1", "reserved"],
      // Transition addresses reach the internet through a relay or a translator: refused.
      ["::ffff:8.8.8.8", "IPv6 transition"],
      ["64:ff9b::8.8.8.8", "IPv6 transition"],
      ["64:ff9b:1::808:808", "IPv6 transition"],
      ["2002:808:808::1", "IPv6 transition"],
      ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "IPv6 transition"],
      ["::8.8.8.8", "reserved"],
    ] as const
  ) {
    assert.equal(kind(address), expected, address);
  }
  for (const address of ["2606:4700::1111", "2a00::1", "2001:4860:4860::8888"]) {
    assert.equal(kind(address), null, address);
  }
});

Deno.test("literalAddresses knows IP literals and localhost without DNS", () => {
  const text = (host: string) => literalAddresses(host)?.map(String);
  assert.deepEqual(text("localhost"), ["127.0.0.1"]);
  assert.deepEqual(text("LOCALHOST."), ["127.0.0.1"]);
  assert.deepEqual(text("api.localhost"), ["127.0.0.1"]);
  assert.deepEqual(text("10.0.0.1"), ["10.0.0.1"]);
  assert.deepEqual(text("[::1]"), ["::1"]);
  assert.equal(literalAddresses("example.com"), null);
  assert.equal(literalAddresses("localhost.example.com"), null);
});

Deno.test("urlRefusal refuses private literals with a message naming the setting", () => {
  for (
    const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:127.0.0.1]:8080/",
      "http://[::1]/",
      "http://localhost:3000/hook",
      "http://app.localhost/hook",
      "http://10.0.0.8/hook",
      "http://2130706433/",
      "http://0x7f.1/",
      "http://0.0.0.0:8080/",
      "http://[fd00::1]/",
    ]
  ) {
    const why = urlRefusal(url, refusePrivate);
    assert.ok(why, url);
    assert.match(why, /targets are not allowed \(set ALLOW_PRIVATE_TARGETS=true/);
  }
  assert.equal(
    urlRefusal("http://localhost:3000/hook", refusePrivate),
    '"localhost" (127.0.0.1): loopback targets are not allowed ' +
      "(set ALLOW_PRIVATE_TARGETS=true or ALLOWED_TARGET_CIDRS)",
  );
  assert.match(urlRefusal("http://169.254.169.254/", refusePrivate)!, /^"169\.254\.169\.254": /);
});

Deno.test("urlRefusal lets public addresses, names and allowed ranges through", () => {
  assert.equal(urlRefusal("https://example.com/hook", refusePrivate), null);
  assert.equal(urlRefusal("https://8.8.8.8/hook", refusePrivate), null);
  assert.equal(urlRefusal("http://10.0.0.8/", allowing("10.0.0.0/8")), null);
  assert.equal(urlRefusal("http://[::ffff:10.0.0.8]/", allowing("10.0.0.0/8")), null);
  assert.equal(urlRefusal("http://localhost/", allowing("127.0.0.1")), null);
  assert.ok(urlRefusal("http://10.0.0.8/", allowing("10.0.1.0/24")));
  const open = { allowPrivateTargets: true, allowedTargetCidrs: [] };
  assert.equal(urlRefusal("http://127.0.0.1/", open), null);
});

/** A resolver that answers from a table and records what it was asked. */
function fakeDns(table: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve: Resolver = (host) => {
    asked.push(host);
    const answer = table[host];
    return answer ? Promise.resolve(answer) : Promise.reject(new Error("no A or AAAA records"));
  };
  return { asked, resolve };
}

const signal = new AbortController().signal;

/** The failure a check answered; fails the test if it let the target through. */
async function refused(check: Promise<CheckedTarget>): Promise<AttemptFailure> {
  const answer = await check;
  assert.ok("errorClass" in answer, `let through: ${JSON.stringify(answer)}`);
  return answer;
}

Deno.test("targetCheck refuses a name when any address it resolves to is not allowed", async () => {
  const dns = fakeDns({
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.example": ["93.184.215.14", "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:10.0.0.1"],
  });
  const check = targetCheck(refusePrivate, dns.resolve)!;
  // The answer is the address to connect to: the one checked, not a second look-up's.
  assert.deepEqual(await check("https://public.example/hook", signal), {
    address: "93.184.215.14",
  });
  assert.deepEqual(await check("https://rebind.example/hook", signal), {
    errorClass: "blocked",
    error: 'Refused to deliver to "rebind.example" (127.0.0.1): loopback targets are not ' +
      "allowed (set ALLOW_PRIVATE_TARGETS=true or ALLOWED_TARGET_CIDRS)",
  });
  assert.match((await refused(check("http://metadata.example/", signal))).error, /link-local/);
  assert.match(
    (await refused(check("http://mapped.example/", signal))).error,
    /\(::ffff:a00:1\): private/,
  );
  assert.deepEqual(dns.asked, [
    "public.example",
    "rebind.example",
    "metadata.example",
    "mapped.example",
  ]);
});

Deno.test("targetCheck does not ask DNS about literals and localhost", async () => {
  const dns = fakeDns({});
  const check = targetCheck(refusePrivate, dns.resolve)!;
  assert.equal((await refused(check("http://localhost:8080/", signal))).errorClass, "blocked");
  assert.equal((await refused(check("http://[::1]/", signal))).errorClass, "blocked");
  assert.deepEqual(await check("http://8.8.8.8/", signal), { address: null });
  const allowed = targetCheck(allowing("127.0.0.0/8"), dns.resolve)!;
  // `*.localhost` is loopback without a look-up, and so it is connected to.
  assert.deepEqual(await allowed("http://hooks.localhost:8080/", signal), {
    address: "127.0.0.1",
  });
  assert.deepEqual(dns.asked, []);
});

Deno.test("targetCheck reports a failed look-up as a DNS error", async () => {
  const check = targetCheck(refusePrivate, fakeDns({ "odd.example": ["not-an-ip"] }).resolve)!;
  assert.deepEqual(await check("https://missing.example/", signal), {
    errorClass: "dns",
    error: 'Could not resolve "missing.example": no A or AAAA records',
  });
  assert.equal((await refused(check("https://odd.example/", signal))).errorClass, "dns");
});

Deno.test("targetCheck lets ALLOWED_TARGET_CIDRS through and does nothing when all is allowed", async () => {
  const dns = fakeDns({ "internal.example": ["10.1.2.3", "fd00::5"] });
  const check = targetCheck(allowing("10.0.0.0/8", "fd00::/8"), dns.resolve)!;
  assert.deepEqual(await check("http://internal.example/", signal), { address: "10.1.2.3" });
  const partly = targetCheck(allowing("10.0.0.0/8"), dns.resolve)!;
  assert.match(
    (await refused(partly("http://internal.example/", signal))).error,
    /\(fd00::5\): private/,
  );
  assert.equal(
    targetCheck({ allowPrivateTargets: true, allowedTargetCidrs: [] }, dns.resolve),
    undefined,
  );
});

Deno.test("targetCheck gives up with the attempt when its signal aborts", async () => {
  const aborter = new AbortController();
  const hanging: Resolver = (_host, s) =>
    new Promise((_, reject) => s.addEventListener("abort", () => reject(s.reason)));
  const check = targetCheck(refusePrivate, hanging)!;
  const pending = check("https://slow.example/", aborter.signal);
  aborter.abort(new DOMException("timed out", "TimeoutError"));
  await assert.rejects(pending, { name: "TimeoutError" });
});
