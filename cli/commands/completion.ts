import { Argument, type Command } from "commander";
import type { CompletionShell } from "../completion.ts";

const SHELLS: CompletionShell[] = ["bash", "zsh"];

/** Adds `jitr completion bash|zsh`. */
export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: source <(jitr completion bash), or zsh")
    .addArgument(new Argument("<shell>", "the shell to complete in").choices(SHELLS))
    .action(async (shell: CompletionShell) => {
      const { completionScript } = await import("../completion.ts");
      process.stdout.write(completionScript(program, shell));
    });
}
