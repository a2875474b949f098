/**
 * A command in a real pseudo-terminal: a tmux session on a server of the
 * test's own, so keys like Ctrl+C reach the terminal's foreground process
 * group exactly as they do when a person presses them.
 */

export interface Terminal {
  /** Presses keys in tmux's notation, e.g. "C-c". */
  press(keys: string): Promise<void>;
  /** What the command wrote to stdout so far. */
  stdout(): Promise<string>;
  stderr(): Promise<string>;
  /** The command's exit code, or null while it runs. */
  exitCode(): Promise<number | null>;
  /** Kills the session and its server (gone already if the command ended), removes the files. */
  close(): Promise<void>;
}

async function tmux(socket: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("tmux", { args: ["-L", socket, ...args], stdin: "null" })
    .output();
  if (!out.success) {
    throw new Error(`tmux ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs `args` in `cwd` with `env` added and `unset` removed; its output goes to files. */
export async function openTerminal(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; unset?: string[] },
): Promise<Terminal> {
  const dir = await Deno.makeTempDir({ prefix: "dispatch-pty-" });
  const socket = `dispatch-test-${crypto.randomUUID().slice(0, 8)}`;
  const env = [
    ...(options.unset ?? []).map((name) => `-u ${name}`),
    ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${quote(v)}`),
  ].join(" ");
  // stdin stays the terminal; the exit code is written once the command ends.
  const command = `cd ${quote(options.cwd)} && env ${env} ${args.map(quote).join(" ")} ` +
    `>${dir}/stdout 2>${dir}/stderr; echo $? >${dir}/code.tmp && mv ${dir}/code.tmp ${dir}/code`;
  await tmux(socket, "new-session", "-d", "-s", "t", "-x", "200", "-y", "50", command);
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`).catch(() => "");
  return {
    press: (keys) => tmux(socket, "send-keys", "-t", "t", keys),
    stdout: () => read("stdout"),
    stderr: () => read("stderr"),
    async exitCode() {
      const code = await read("code");
      return code === "" ? null : Number(code);
    },
    async close() {
      await tmux(socket, "kill-server").catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}
