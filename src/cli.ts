import { type Variable, variables } from "./config.ts";
import { VERSION } from "./version.ts";

export type Command =
  | { kind: "serve" | "api" | "worker" | "migrate" }
  | { kind: "help"; topic: string | null }
  | { kind: "version" }
  | { kind: "error"; message: string };

const commands = {
  serve: "Run the API and the delivery workers in one process (default)",
  api: "Run only the HTTP API; scale it apart from the workers",
  worker: "Run only the delivery workers; ADDR serves /healthz, /readyz and /metrics",
  migrate: "Apply pending database migrations and exit",
} as const;

export function parseCommand(args: readonly string[]): Command {
  const [first, ...rest] = args;
  if (first === "--help" || first === "-h" || first === "help") {
    return { kind: "help", topic: rest[0] ?? null };
  }
  if (first === "--version" || first === "-V") return { kind: "version" };
  const name = first ?? "serve";
  if (!(name in commands)) {
    return {
      kind: "error",
      message: `Unknown command "${name}": use one of ${Object.keys(commands).join(", ")}`,
    };
  }
  if (rest.includes("--help") || rest.includes("-h")) return { kind: "help", topic: name };
  if (rest.length > 0) {
    return { kind: "error", message: `Unexpected argument "${rest[0]}": see "${name} --help"` };
  }
  return { kind: name as keyof typeof commands };
}

export function versionText(): string {
  return `dispatch ${VERSION}`;
}

/** A variable's default as people read it. */
export function shownDefault(variable: Variable): string {
  return variable.shown ?? variable.fallback ?? "none";
}

export function helpText(topic: string | null): string {
  const head = topic !== null && topic in commands
    ? `dispatch ${topic}\n\n${commands[topic as keyof typeof commands]}.`
    : `Dispatch ${VERSION}: a webhook dispatcher on PostgreSQL\n\n` +
      "Usage: dispatch [command] [--help | --version]\n\nCommands:\n" +
      Object.entries(commands).map(([name, text]) => `  ${name.padEnd(8)} ${text}`).join("\n");
  const entries = Object.entries(variables) as [string, Variable][];
  const width = Math.max(...entries.map(([name]) => name.length));
  const vars = entries.map(([name, v]) =>
    `  ${name.padEnd(width)}  ${v.about}\n  ${"".padEnd(width)}  default: ${shownDefault(v)}`
  );
  return `${head}\n\nEnvironment variables:\n${vars.join("\n")}\n\n` +
    "Deno's OTEL_* variables (OTEL_DENO=true, OTEL_EXPORTER_OTLP_ENDPOINT, ...) export traces;\n" +
    "see docs/operations.md (Traces).";
}
