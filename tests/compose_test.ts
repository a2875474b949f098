/**
 * docker-compose.yml and the Dockerfile, read as Docker would read them
 * (no Docker engine runs on our machines).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

const root = new URL("..", import.meta.url).pathname;

interface Service {
  env_file?: ({ path: string; required?: boolean } | string)[];
  environment?: Record<string, string>;
  ports?: string[];
}

const compose = parse(await Deno.readTextFile(`${root}/docker-compose.yml`)) as {
  services: Record<string, Service>;
};
const dispatch = compose.services.dispatch!;

Deno.test("compose hands Dispatch every variable of an optional .env and sets only its own two", () => {
  assert.deepEqual(dispatch.env_file, [{ path: ".env", required: false }]);
  // Anything else set here would override what .env says.
  assert.deepEqual(dispatch.environment, {
    DATABASE_URL: "postgres://dispatch:dispatch@postgres:5432/dispatch",
    ADDR: ":8080",
  });
});

Deno.test("the container listens on every interface, published on this machine only", async () => {
  assert.match(await Deno.readTextFile(`${root}/Dockerfile`), /^ENV ADDR=:8080$/m);
  assert.deepEqual(dispatch.ports, ["127.0.0.1:8080:8080"]);
});
