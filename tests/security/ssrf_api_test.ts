import assert from "node:assert/strict";
import { type Cidr, parseCidr } from "../../src/security/ip.ts";
import { json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

const production = { allowPrivateTargets: false };

const privateUrls = [
  "http://169.254.169.254/latest/meta-data/iam/",
  "http://[::ffff:127.0.0.1]:8080/hook",
  "http://[::ffff:169.254.169.254]/",
  "http://[::1]/hook",
  "http://localhost:3000/hook",
  "http://LocalHost./hook",
  "http://hooks.localhost/",
  "http://127.0.0.1/hook",
  "http://2130706433/hook",
  "http://10.0.0.8/hook",
  "http://172.20.1.1/",
  "http://192.168.1.1/",
  "http://100.100.100.200/",
  "http://0.0.0.0:8080/",
  "http://[fd00::1]/",
  "http://[fe80::1]/",
  "http://[64:ff9b::a9fe:a9fe]/",
];

Deno.test("creating a subscription for a private, loopback or metadata address answers 400 naming url", async () => {
  const t = await testApp(production);
  try {
    for (const url of privateUrls) {
      const res = await t.call("POST", "/subscriptions", { url });
      assert.equal(res.status, 400, url);
      const { error } = await json(res);
      assert.equal(error.code, "validation_failed");
      assert.match(error.message, /^Invalid field "url": points to "/, url);
      assert.match(error.message, /targets are not allowed \(set ALLOW_PRIVATE_TARGETS=true/);
      assert.deepEqual(error.details.map((d: { field: string }) => d.field), ["url"]);
    }
    const metadata = await json(
      await t.call("POST", "/subscriptions", { url: "http://169.254.169.254/" }),
    );
    assert.match(metadata.error.message, /"169\.254\.169\.254": link-local targets/);
    const mapped = await json(
      await t.call("POST", "/subscriptions", { url: "http://[::ffff:127.0.0.1]/" }),
    );
    assert.match(mapped.error.message, /"\[::ffff:7f00:1\]": loopback targets/);
    assert.equal(await countRows(t.db.sql, "subscriptions"), 0);
  } finally {
    await t.close();
  }
});

Deno.test("PATCH to a private url answers 400 and leaves the subscription as it was", async () => {
  const t = await testApp(production);
  try {
    const created = await t.call("POST", "/subscriptions", {
      id: "sub_pub",
      url: "https://hooks.example.com/in",
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();
    const res = await t.call("PATCH", "/subscriptions/sub_pub", { url: "http://[::1]:9000/" });
    assert.equal(res.status, 400);
    assert.match((await json(res)).error.message, /^Invalid field "url": points to "\[::1\]"/);
    const got = await json(await t.call("GET", "/subscriptions/sub_pub"));
    assert.equal(got.url, "https://hooks.example.com/in");
    const other = await t.call("PATCH", "/subscriptions/sub_pub", { description: "still fine" });
    assert.equal(other.status, 200);
    await other.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("public addresses and host names are accepted: names are checked at delivery", async () => {
  const t = await testApp(production);
  try {
    for (
      const url of [
        "https://hooks.example.com/in",
        "https://8.8.8.8/hook",
        "http://[2606:4700::1111]/",
        "https://internal.corp.example/hook",
        "https://localhost.example.com/hook",
      ]
    ) {
      const res = await t.call("POST", "/subscriptions", { url });
      assert.equal(res.status, 201, url);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("ALLOWED_TARGET_CIDRS admits its ranges at creation, and only those", async () => {
  const t = await testApp({
    ...production,
    allowedTargetCidrs: ["10.20.0.0/16", "127.0.0.1"].map((c) => parseCidr(c) as Cidr),
  });
  try {
    for (const url of ["http://10.20.3.4/hook", "http://localhost:8080/", "http://127.0.0.1/"]) {
      const res = await t.call("POST", "/subscriptions", { url });
      assert.equal(res.status, 201, url);
      await res.body?.cancel();
    }
    for (const url of ["http://10.21.0.1/hook", "http://127.0.0.2/", "http://[::1]/"]) {
      const res = await t.call("POST", "/subscriptions", { url });
      assert.equal(res.status, 400, url);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("with private targets allowed (the development default) loopback urls are accepted", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/subscriptions", { url: "http://127.0.0.1:9/hook" });
    assert.equal(res.status, 201);
    await res.body?.cancel();
  } finally {
    await t.close();
  }
});
