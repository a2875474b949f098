import { ConfigError, type HttpSettings } from "../config.ts";

/** Deno.serve, with the reasons a listener cannot start said in terms of ADDR. */
export function serve(
  config: Pick<HttpSettings, "hostname" | "port">,
  handler: Deno.ServeHandler,
): Deno.HttpServer<Deno.NetAddr> {
  const addr = `${config.hostname}:${config.port}`;
  try {
    return Deno.serve(
      { hostname: config.hostname, port: config.port, onListen: () => {} },
      handler,
    );
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new ConfigError(
        `Cannot listen on ADDR "${addr}": port ${config.port} is in use by another process (stop it, or set ADDR to another port)`,
      );
    }
    if (err instanceof Deno.errors.AddrNotAvailable) {
      throw new ConfigError(
        `Cannot listen on ADDR "${addr}": ${config.hostname} is not an address of this machine`,
      );
    }
    throw err;
  }
}
