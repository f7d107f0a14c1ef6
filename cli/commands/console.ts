import { spawn } from "node:child_process";
import { type Command, Option } from "commander";
import { CliError } from "../output.ts";

interface ConsoleOptions {
  api?: string;
  data?: string;
  token?: string;
  port: string;
  open: boolean;
}

/** Adds `jitr console`: the admin console in a browser, on 127.0.0.1, proxying to the admin API. */
export function registerConsoleCommand(program: Command): void {
  program
    .command("console")
    .description(
      "serve the admin console on 127.0.0.1 and open it: the address carries a one-time secret; the console " +
        "proxies to the admin API (the local bearer token, or SigV4 with your AWS credentials for --api https://...)",
    )
    // the admin commands' connection options (theirs live with the command files, which no module imports)
    .option("--api <url>", "admin API URL (default: adminApi in <data>/endpoints.json)")
    .option("--data <dir>", "local state directory holding endpoints.json", ".jitr")
    .addOption(
      new Option(
        "--token <token>",
        "bearer token (local mode); default: the token file of endpoints.json",
      ).env("JITR_ADMIN_TOKEN"),
    )
    .option("--port <port>", "port to serve on (0: a free one)", "0")
    .option("--no-open", "print the address only; do not open a browser")
    .action(async (options: ConsoleOptions) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new CliError(`--port must be a port number; got "${options.port}"`);
      }
      const [{ adminApiConnection, nodeTransport }, { loadAssets }, { startConsoleServer }] =
        await Promise.all([
          import("../api-client.ts"),
          import("../../console/assets.ts"),
          import("../../console/server.ts"),
        ]);
      const connection = await adminApiConnection({
        ...(options.api !== undefined ? { api: options.api } : {}),
        ...(options.data !== undefined ? { data: options.data } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
      });
      const assets = await loadAssets();
      const server = await startConsoleServer({
        upstream: { baseUrl: connection.baseUrl, sign: connection.sign, transport: nodeTransport },
        assets,
        port,
      });
      process.stdout.write(
        `jitr console ready: ${server.openUrl}\n` +
          `  admin API ${connection.baseUrl.href} (${connection.scheme === "sigv4" ? "SigV4" : "bearer token"}); ` +
          `page script ${assets.bundled === "prebuilt" ? "built with the package" : "bundled from the sources"}; ` +
          "the address works once; Ctrl-C stops the console\n",
      );
      if (options.open) openBrowser(server.openUrl);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await server.close();
    });
}

/** Opens a URL in the desktop's browser when there is an opener; never fails (the address is printed). */
export function openBrowser(url: string): void {
  const opener =
    process.platform === "darwin"
      ? ["open", url]
      : process.platform === "win32"
        ? ["cmd", "/c", "start", "", url]
        : ["xdg-open", url];
  const [command = "xdg-open", ...args] = opener;
  try {
    const child = spawn(command, args, { stdio: "ignore", detached: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // no opener: the printed address is enough
  }
}
