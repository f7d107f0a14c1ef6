import { Command, CommanderError } from "commander";
import { registerAdminCommands } from "./commands/admin/index.ts";
import { registerCaCommands } from "./commands/ca.ts";
import { registerCompletionCommand } from "./commands/completion.ts";
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
    .showHelpAfterError()
    .exitOverride();
  registerCaCommands(program);
  registerDeviceCommands(program);
  registerAdminCommands(program);
  registerLocalCommands(program);
  registerSimulateCommand(program);
  registerCompletionCommand(program);
  return program;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof CliError) {
      process.stderr.write(`jitr: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`jitr: ${describeFailure(error)}\n`);
    return 1;
  }
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
