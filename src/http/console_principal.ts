import type { AuditActor } from "../engine/audit.ts";
import type { Principal } from "./access.ts";

/**
 * Where the console puts the principal of the session it calls the API for,
 * and who that is for the audit log: in the fetch handler's `env`, under a
 * symbol, which no request can carry. `authenticate` takes them instead of an
 * Authorization header.
 */
export const consolePrincipal = Symbol("console session principal");

export interface ConsoleSession {
  principal: Principal;
  /** `console`, or `portal` for a portal link's session. */
  actor: AuditActor;
}

export interface ConsoleEnv {
  [consolePrincipal]: ConsoleSession;
}

/** The session the console made this request for, if it is one of the console's own. */
export function sessionFromConsole(env: unknown): ConsoleSession | undefined {
  return typeof env === "object" && env !== null
    ? (env as Partial<ConsoleEnv>)[consolePrincipal]
    : undefined;
}
