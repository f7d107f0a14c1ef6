/*
 * `jitr console` as a process: started with --no-open, its printed address read, and a sign-in through it
 * (the token exchanged for the cookie, then the page script and one API call with that cookie).
 */
import { type ChildProcess, spawn } from "node:child_process";

/** Starts `<jitr> console --no-open ...args`; resolves once it prints its address. */
export function startConsoleProcess(
  jitr: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ child: ChildProcess; openUrl: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(jitr, ["console", "--no-open", ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const onData = (d: Buffer) => {
      output += d;
      const found = /jitr console ready: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)\n/.exec(output);
      if (found?.[1] && output.includes("Ctrl-C"))
        resolve({ child, openUrl: found[1], output: () => output });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    child.on("close", (code) =>
      reject(new Error(`jitr console ended (${code}) before it was ready:\n${output}`)),
    );
  });
}

/** Signs in through the printed address; answers the statuses and bodies a browser would get. */
export async function signInThrough(openUrl: string) {
  const exchange = await fetch(openUrl, { redirect: "manual" });
  const cookie = (exchange.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const origin = new URL(openUrl).origin;
  const script = await fetch(`${origin}/app.js`, { headers: { cookie } });
  const api = await fetch(`${origin}/api/allowlist?limit=5`, { headers: { cookie } });
  const again = await fetch(openUrl, { redirect: "manual" });
  return {
    exchange: exchange.status,
    location: exchange.headers.get("location"),
    script: { status: script.status, type: script.headers.get("content-type"), text: await script.text() },
    api: { status: api.status, json: (await api.json()) as unknown },
    again: again.status,
  };
}

/** Stops the process with SIGTERM; resolves with its exit code. */
export function stopProcess(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.removeAllListeners("close");
    child.once("close", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}
