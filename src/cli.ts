export type Command =
  | { kind: "serve" | "api" | "worker" | "migrate" }
  | { kind: "help"; topic: string | null }
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

export function helpText(topic: string | null): string {
  if (topic !== null && topic in commands) {
    return `dispatch ${topic}\n\n${commands[topic as keyof typeof commands]}.\n\n` +
      "Configured by environment variables; see README.md (Configuration).";
  }
  const lines = Object.entries(commands).map(([name, text]) => `  ${name.padEnd(8)} ${text}`);
  return `Dispatch: a webhook dispatcher on PostgreSQL\n\nUsage: dispatch [command] [--help]\n\nCommands:\n${
    lines.join("\n")
  }\n\nConfigured by environment variables; see README.md (Configuration).`;
}
