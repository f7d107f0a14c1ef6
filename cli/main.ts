import { Command, CommanderError } from "commander";
import { registerAdminCommands } from "./commands/admin.ts";
import { registerCaCommands } from "./commands/ca.ts";
import { registerDeviceCommands } from "./commands/device.ts";
import { registerLocalCommands } from "./commands/local.ts";
import { registerSimulateCommand } from "./commands/simulate.ts";
import { CliError } from "./output.ts";

/** Builds the `jitr` command tree. */
export function buildProgram(): Command {
  const program = new Command("jitr")
    .description("Just-in-time registration for AWS IoT Core: allowlist, policy mappings, local stack")
    .showHelpAfterError()
    .exitOverride();
  registerCaCommands(program);
  registerDeviceCommands(program);
  registerAdminCommands(program);
  registerLocalCommands(program);
  registerSimulateCommand(program);
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
    process.stderr.write(`jitr: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
