import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { completionScript } from "../../cli/completion.ts";
import { buildProgram, main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";

const output = captureOutput();

/** Every command of the tree with its path from the root, and the long flags of its options. */
function commandsOf(command: Command, path = ""): { path: string; flags: string[] }[] {
  const flags = command.options.flatMap((o) => (o.long ? [o.long] : []));
  return [
    { path, flags },
    ...command.commands.flatMap((sub) => commandsOf(sub, path ? `${path} ${sub.name()}` : sub.name())),
  ];
}

/** What the bash script completes for a command line (the last word being completed). */
function bashCompletes(script: string, words: string[]): string[] {
  const run = spawnSync(
    "bash",
    [
      "-c",
      `${script}\nCOMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _jitr; printf '%s\\n' "\${COMPREPLY[@]}"`,
      "bash",
      ...words,
    ],
    { encoding: "utf8" },
  );
  expect(run.stderr).toBe("");
  return run.stdout.split("\n").filter(Boolean);
}

describe("jitr completion", () => {
  it.each(["bash", "zsh"] as const)("the %s script names every command and every option", (shell) => {
    // Prepare
    const commands = commandsOf(buildProgram());

    // Act
    const script = completionScript(buildProgram(), shell);

    // Assess
    expect(commands.length).toBeGreaterThan(20);
    for (const { path, flags } of commands) {
      expect(script, path).toContain(`'${path}')`);
      for (const flag of flags)
        expect(script, `${path} ${flag}`).toMatch(new RegExp(`'${path}'\\).*${flag}\\b`));
    }
  });

  it("the bash script completes commands, subcommands, options and their choices from the tree", () => {
    // Prepare
    const script = completionScript(buildProgram(), "bash");

    // Act
    const top = bashCompletes(script, ["jitr", ""]);
    const allowlist = bashCompletes(script, ["jitr", "allowlist", ""]);
    const putOptions = bashCompletes(script, ["jitr", "allowlist", "put", "dev-1", "--lot", "ca", "--st"]);
    const statuses = bashCompletes(script, ["jitr", "allowlist", "put", "dev-1", "--status", ""]);
    const fileValue = bashCompletes(script, ["jitr", "ca", "create", "--out", ""]);
    const shells = bashCompletes(script, ["jitr", "completion", ""]);

    // Assess
    expect(top).toEqual(expect.arrayContaining(["ca", "device", "allowlist", "local", "completion"]));
    expect(allowlist).toEqual(expect.arrayContaining(["put", "get", "list", "remove", "import", "export"]));
    expect(putOptions).toEqual(["--status"]);
    expect(statuses).toEqual(["allowed", "blocked"]);
    expect(fileValue).toEqual([]);
    expect(shells).toEqual(["bash", "zsh"]);
  });

  it("prints the script, and refuses a shell it does not know with status 1 and no script", async () => {
    // Act
    const bash = await main(["node", "jitr", "completion", "bash"]);
    const printed = output.stdout();
    output.reset();
    const fish = await main(["node", "jitr", "completion", "fish"]);

    // Assess
    expect(bash).toBe(0);
    expect(printed).toContain("complete -o default -F _jitr jitr");
    expect(fish).toBe(1);
    expect(output.stdout()).toBe("");
    expect(output.stderr()).toMatch(/Allowed choices are bash, zsh/);
  });
});
