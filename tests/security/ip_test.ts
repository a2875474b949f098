import assert from "node:assert/strict";
import { Cidr, inCidr, parseCidr, parseIp } from "../../src/security/ip.ts";

const ip = (text: string) => {
  const address = parseIp(text);
  assert.ok(address, `${text} should parse`);
  return address;
};

const cidr = (text: string) => {
  const range = parseCidr(text);
  assert.ok(range instanceof Cidr, `${text}: ${range}`);
  return range;
};

const bytes = (text: string) => ip(text).toByteArray();

Deno.test("parseIp reads dotted IPv4 and every IPv6 text form", () => {
  assert.deepEqual(bytes("192.168.0.1"), [192, 168, 0, 1]);
  assert.deepEqual(bytes("::1"), [...new Array(15).fill(0), 1]);
  assert.deepEqual(bytes("::"), new Array(16).fill(0));
  assert.deepEqual(bytes("fe80::1:2"), [0xfe, 0x80, ...new Array(10).fill(0), 0, 1, 0, 2]);
  assert.deepEqual(bytes("::ffff:127.0.0.1"), bytes("::ffff:7f00:1"));
  assert.deepEqual(bytes("0:0:0:0:0:0:0:1"), bytes("::1"));
  assert.deepEqual(bytes("1:2:3:4:5:6:7::"), bytes("1:2:3:4:5:6:7:0"));
  assert.deepEqual(bytes("ABCD::EF"), bytes("abcd::ef"));
  // IPv4-compatible, not IPv4-mapped: ipaddr.js alone reads it as "::ffff:127.0.0.1".
  assert.deepEqual(bytes("::127.0.0.1"), bytes("::7f00:1"));
  assert.equal(ip("10.0.0.1").kind(), "ipv4");
  assert.equal(ip("::ffff:10.0.0.1").kind(), "ipv6");
});

Deno.test("parseIp refuses anything but a strict literal", () => {
  for (
    const text of [
      "",
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "0x7f.0.0.1",
      "2130706433",
      " 1.2.3.4",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "1::2::3",
      ":::",
      ":1::",
      "12345::",
      "g::1",
      "::1.2.3",
      "1.2.3.4::",
      "::ffff:1.2.3.4:5",
      "fe80::1%eth0",
      "[::1]",
      "localhost",
      "::ffff:01.2.3.4",
      "::ffff:0x7f.0.0.1",
      "::ffff:1.2.3.4%eth0",
      "00001::",
    ]
  ) {
    assert.equal(parseIp(text), null, JSON.stringify(text));
  }
});

Deno.test("addresses print as canonical text, compressing the longest zero run", () => {
  for (
    const [text, canonical] of [
      ["10.0.0.1", "10.0.0.1"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["::", "::"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["fe80:0:0:0:0:0:0:0", "fe80::"],
      ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ] as const
  ) {
    assert.equal(String(ip(text)), canonical);
  }
});

Deno.test("parseCidr takes a range or a single address and explains what is wrong", () => {
  assert.equal(String(cidr("10.0.0.0/8")), "10.0.0.0/8");
  assert.equal(String(cidr("10.1.2.3")), "10.1.2.3/32");
  assert.equal(String(cidr("fd00::/8")), "fd00::/8");
  assert.equal(String(cidr("::1")), "::1/128");
  assert.equal(JSON.stringify([cidr("0.0.0.0/0")]), '["0.0.0.0/0"]');
  assert.match(String(parseCidr("10.0.0.1/8")), /host bits set: did you mean "10\.0\.0\.0\/8"/);
  assert.match(String(parseCidr("10.0.0.0/33")), /prefix length outside 0 to 32/);
  assert.match(String(parseCidr("::/129")), /outside 0 to 128/);
  assert.match(String(parseCidr("10.0.0.0/-1")), /outside/);
  assert.match(String(parseCidr("example.com/8")), /is not a CIDR range/);
  assert.match(String(parseCidr("10.0.0.0/8/8")), /is not a CIDR range/);
});

Deno.test("inCidr matches by prefix and never across address families", () => {
  assert.ok(inCidr(ip("172.31.255.255"), cidr("172.16.0.0/12")));
  assert.ok(!inCidr(ip("172.32.0.0"), cidr("172.16.0.0/12")));
  assert.ok(inCidr(ip("8.8.8.8"), cidr("0.0.0.0/0")));
  assert.ok(inCidr(ip("fd12:3456::1"), cidr("fc00::/7")));
  assert.ok(!inCidr(ip("::ffff:10.0.0.1"), cidr("10.0.0.0/8")));
  assert.ok(!inCidr(ip("10.0.0.1"), cidr("::/0")));
});
