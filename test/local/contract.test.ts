import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ENDPOINTS_FILE,
  type LocalEndpoints,
  loadLocalEndpoints,
  readLocalEndpoints,
  writeLocalEndpoints,
} from "../../local/contract.ts";

const endpoints: LocalEndpoints = {
  awsEndpoint: "http://127.0.0.1:4580",
  adminApi: "http://127.0.0.1:4581",
  adminTokenFile: "/data/admin-token",
  mqttHost: "127.0.0.1",
  mqttPort: 8883,
  gatewayCaFile: "/data/gateway-ca.pem",
  region: "us-east-1",
  accountId: "123456789012",
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jitr-contract-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe("the local contract (endpoints.json)", () => {
  it("reads back what the stack writes", async () => {
    // Prepare
    const data = join(dir, "written");
    await mkdir(data);

    // Act
    await writeLocalEndpoints(data, endpoints);

    // Assess
    expect(await readLocalEndpoints(data)).toEqual(endpoints);
    expect(await loadLocalEndpoints(data)).toEqual(endpoints);
  });

  it("has no endpoints where the stack wrote none, and says how to start one", async () => {
    // Prepare
    const data = join(dir, "empty");

    // Act
    const read = await readLocalEndpoints(data);
    const loading = loadLocalEndpoints(data);

    // Assess
    expect(read).toBeUndefined();
    await expect(loading).rejects.toThrow(
      `no ${join(data, ENDPOINTS_FILE)}: start the local stack with \`jitr local\``,
    );
  });

  it("names the file it cannot read", async () => {
    // Prepare
    const data = join(dir, "broken");
    await mkdir(data);
    await writeFile(join(data, ENDPOINTS_FILE), "{ not json");

    // Act
    const reading = readLocalEndpoints(data);

    // Assess
    await expect(reading).rejects.toThrow(`cannot read ${join(data, ENDPOINTS_FILE)}`);
  });
});
