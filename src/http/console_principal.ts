import type { Principal } from "./access.ts";

/**
 * Where the console puts the principal of the session it calls the API for:
 * in the fetch handler's `env`, under a symbol, which no request can carry.
 * `authenticate` takes it instead of an Authorization header.
 */
export const consolePrincipal = Symbol("console session principal");

export interface ConsoleEnv {
  [consolePrincipal]: Principal;
}

/** The principal the console gave this request, if it is one of the console's own. */
export function principalFromConsole(env: unknown): Principal | undefined {
  return typeof env === "object" && env !== null
    ? (env as Partial<ConsoleEnv>)[consolePrincipal]
    : undefined;
}
