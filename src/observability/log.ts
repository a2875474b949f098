import type { LogLevel } from "../config.ts";

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line: `{"time","level","msg",...fields}`. */
export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const min = rank[options.level ?? "info"];
  const write = options.write ?? ((line: string) => console.log(line));
  const emit = (level: LogLevel) => (msg: string, fields?: Fields) => {
    if (rank[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, errors));
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

function errors(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/** For tests and tools that want silence. */
export const silentLogger: Logger = createLogger({ write: () => {} });
