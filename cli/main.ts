import { Command, CommanderError } from "commander";
import { registerAdminCommands } from "./commands/admin/index.ts";
import { registerCaCommands } from "./commands/ca.ts";
import { registerCompletionCommand } from "./commands/completion.ts";
import { registerConsoleCommand } from "./commands/console.ts";
import { registerDeviceCommands } from "./commands/device.ts";
import { registerLocalCommands } from "./commands/local.ts";
import { registerSimulateCommand } from "./commands/simulate.ts";
import { CliError } from "./output.ts";
import { packageVersion } from "./version.ts";

/** Builds the `jitr` command tree. */
export function buildProgram(): Command {
  const program = new Command("jitr")
    .description("Just-in-time registration for AWS IoT Core: allowlist, policy mappings, local stack")
    .version(packageVersion(), "-V, --version", "print the version of jitr")
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({
      // under --json an error is one JSON line on stderr (written by main), nothing else
      outputError: (text, write) => (jsonErrors ? undefined : write(text)),
      writeErr: (text) => (jsonErrors ? undefined : process.stderr.write(text)),
    })
    .exitOverride();
  registerCaCommands(program);
  registerDeviceCommands(program);
  registerAdminCommands(program);
  registerLocalCommands(program);
  registerSimulateCommand(program);
  registerConsoleCommand(program);
  registerCompletionCommand(program);
  return program;
}

/** Whether errors are reported as JSON (`--json` on the command line), read when a run starts. */
let jsonErrors = false;

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  const args = helpAsOption(argv);
  jsonErrors = args.slice(2).includes("--json");
  const program = buildProgram();
  try {
    await program.parseAsync(args);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (jsonErrors && error.exitCode !== 0) {
        const message = error.message.replace(/^error: /, "");
        reportJson(error.code.replace(/^commander\./, "Usage."), message);
      }
      return error.exitCode;
    }
    if (error instanceof CliError) {
      if (jsonErrors) reportJson(error.api?.code ?? "Error", error.message, error.api?.details);
      else process.stderr.write(`jitr: ${error.message}\n`);
      return error.exitCode;
    }
    if (jsonErrors) reportJson("Error", describeFailure(error));
    else process.stderr.write(`jitr: ${describeFailure(error)}\n`);
    return 1;
  }
}

/** Writes an error as the API's error body (`{"error":{"code","message","details"}}`) on stderr. */
function reportJson(code: string, message: string, details?: unknown): void {
  const error = { code, message, ...(details === undefined ? {} : { details }) };
  process.stderr.write(`${JSON.stringify({ error })}\n`);
}

/** `jitr help a b` as `jitr a b --help`, so the help shown is the named subcommand's, at any depth. */
function helpAsOption(argv: string[]): string[] {
  const [node = "node", script = "jitr", first, ...rest] = argv;
  if (first !== "help" || rest.length === 0) return argv;
  return [node, script, ...rest, "--help"];
}

/** A one-line message for an unexpected error, with a hint where the cause is a common one. */
function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE") {
    return `${message}: another program (perhaps another \`jitr local\`) uses that port; stop it, or pick other ports with --aws-port, --admin-port, --mqtt-port (0 lets the OS choose)`;
  }
  return message;
}
