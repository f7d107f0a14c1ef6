import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

/** Misconfiguration caught when it is saved, through the `jitr` CLI against `jitr local`. */

const output = captureOutput();

let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => t.close());

/** Runs `jitr` in-process against the running stack (endpoints.json and the token file under --data). */
const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
/** The command's JSON output. */
const json = <T>(): T => JSON.parse(output.stdout()) as T;

describe("admin CLI: checks on save", () => {
  it("mappings put refuses a thing type that does not exist, and saves it with --force and a warning", async () => {
    // Act
    output.reset();
    const refused = await jitr(
      "mappings",
      "put",
      "profile:typed",
      "--template",
      "sensor",
      "--thing-type",
      "nope",
    );
    const refusedErr = output.stderr();
    output.reset();
    const forced = await jitr(
      "mappings",
      "put",
      "profile:typed",
      "--template",
      "sensor",
      "--thing-type",
      "nope",
      "--force",
    );

    // Assess
    expect(refused).toBe(1);
    expect(refusedErr).toMatch(/thingType: thing type nope does not exist/);
    expect(forced).toBe(0);
    expect(output.stderr()).toMatch(/warning: thingType: thing type nope does not exist/);
  });

  it("mappings put refuses an inline policy granting iot:* on *, and saves it with --allow-broad-policy", async () => {
    // Prepare
    const document = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }],
    });

    // Act
    output.reset();
    const refused = await jitr("mappings", "put", "device:wide-1", "--document", document);
    const refusedErr = output.stderr();
    output.reset();
    const allowed = await jitr(
      "mappings",
      "put",
      "device:wide-1",
      "--document",
      document,
      "--allow-broad-policy",
    );

    // Assess
    expect(refused).toBe(1);
    expect(refusedErr).toMatch(/policy\.document\.Statement\[0\].*every resource/);
    expect(allowed).toBe(0);
    expect(output.stderr()).toMatch(/warning: policy\.document\.Statement\[0\]/);
  });

  it("lots put refuses --max-devices below the devices provisioned, naming both numbers", async () => {
    // Prepare
    expect(await jitr("lots", "put", "cli-lot", "--max-devices", "5")).toBe(0);
    // the count is the service's: raise it as provisionings would
    await createDocumentClient(t.stack.clients.dynamo).send(
      new UpdateCommand({
        TableName: t.stack.tables.lots,
        Key: { lot: "cli-lot" },
        UpdateExpression: "SET provisionedCount = :n",
        ExpressionAttributeValues: { ":n": 4 },
      }),
    );

    // Act
    output.reset();
    const refused = await jitr("lots", "put", "cli-lot", "--max-devices", "3");

    // Assess
    expect(refused).toBe(1);
    expect(output.stderr()).toMatch(/maxDevices 3 is below the 4 devices already provisioned/);
  });

  it("allowlist put of a record naming a lot that does not exist answers a lot-not-found warning", async () => {
    // Act
    output.reset();
    const code = await jitr(
      "allowlist",
      "put",
      "lotless-1",
      "--status",
      "allowed",
      "--lot",
      "no-lot",
      "--json",
    );

    // Assess
    expect(code).toBe(0);
    expect(json<{ warnings?: { code: string }[] }>().warnings).toEqual([
      expect.objectContaining({ code: "lot-not-found" }),
    ]);
  });

  it("lots remove asks first, refuses a lot a record names (409), and removes it once no record does", async () => {
    // Prepare
    expect(await jitr("lots", "put", "gone-lot", "--max-devices", "5")).toBe(0);
    expect(await jitr("allowlist", "put", "gone-1", "--status", "allowed", "--lot", "gone-lot")).toBe(0);

    // Act
    output.reset();
    const unconfirmed = await jitr("lots", "remove", "gone-lot");
    const unconfirmedErr = output.stderr();
    output.reset();
    const named = await jitr("lots", "remove", "gone-lot", "--yes");
    const namedErr = output.stderr();
    expect(await jitr("allowlist", "remove", "gone-1", "--yes")).toBe(0);
    const removed = await jitr("lots", "remove", "gone-lot", "--yes");
    output.reset();
    const after = await jitr("lots", "get", "gone-lot");

    // Assess
    expect(unconfirmed).toBe(1);
    expect(unconfirmedErr).toMatch(/add --yes/);
    expect(named).toBe(1);
    expect(namedErr).toMatch(/records still name lot gone-lot \(gone-1, maybe more\)/);
    expect(removed).toBe(0);
    expect(after).toBe(1);
    expect(output.stderr()).toMatch(/no lot gone-lot/);
  });

  it("allowlist import of a CSV with an unterminated quote reports that line and imports the 8 after it", async () => {
    // Prepare
    const file = join(t.dataDir, "quote.csv");
    const good = Array.from({ length: 8 }, (_, i) => `csv-after-${i},allowed,fine`);
    await writeFile(file, ["deviceId,status,note", 'csv-broken,allowed,"open', ...good].join("\n"));

    // Act
    output.reset();
    const code = await jitr("allowlist", "import", file, "--json");

    // Assess: the good lines are imported; a rejected line makes the exit status 1
    expect(code).toBe(1);
    expect(json()).toMatchObject({ accepted: 8, rejectedCount: 1, rejected: [{ line: 2 }] });
    expect(output.stderr()).toMatch(/1 line\(s\) rejected/);
  });
});
