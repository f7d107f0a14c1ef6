import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { MqttClient } from "mqtt";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { registerCa, writeCa } from "../../cli/ca.ts";
import { connectWithRetry, type DeviceIdentity, type Endpoint } from "../../cli/device-client.ts";
import type { AllowlistRecord, PolicyMapping } from "../../domain/types.ts";
import { type LocalStackOptions, startLocalStack } from "../../local/stack.ts";
import {
  certificateIdOf,
  createCa,
  issueCertificate,
  type KeyedCertificate,
} from "../../pki/certificates.ts";

/** A local stack on free ports with in-memory AWS state, a registered fleet CA, and helpers to seed it. */
export async function startTestStack(options: Partial<LocalStackOptions> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), "jitr-e2e-"));
  const stack = await startLocalStack({
    dataDir,
    inMemory: true,
    awsPort: 0,
    adminPort: 0,
    mqttPort: 0,
    ...options,
  });
  const caDir = join(dataDir, "fleet-ca");
  const ca = await createCa({ commonName: "E2E Fleet CA" });
  await mkdir(caDir, { recursive: true });
  await writeCa(caDir, ca);
  const { certificateId: caId } = await registerCa(stack.clients.iot, caDir, { autoRegistration: true });
  const doc = createDocumentClient(stack.clients.dynamo);
  const endpoint: Endpoint = {
    host: stack.endpoints.mqttHost,
    port: stack.endpoints.mqttPort,
    caPem: await readFile(stack.endpoints.gatewayCaFile, "utf8"),
  };

  const status = (certificateId: string) => stack.aws.iot.describeCertificateById(certificateId)?.status;
  const clients: MqttClient[] = [];

  return {
    stack,
    dataDir,
    ca,
    caId,
    endpoint,
    /** Writes an allowlist record straight to the table. */
    async allow(deviceId: string, extra: Partial<AllowlistRecord> = {}) {
      await doc.send(
        new PutCommand({
          TableName: stack.tables.allowlist,
          Item: { deviceId, status: "allowed", version: 1, ...extra },
        }),
      );
    },
    /** Writes a policy mapping straight to the table. */
    async map(mapping: Omit<PolicyMapping, "version">) {
      await doc.send(new PutCommand({ TableName: stack.tables.mappings, Item: { version: 1, ...mapping } }));
    },
    /** Issues a device certificate (CN = device id) from the fleet CA or another signer. */
    async device(
      cn: string,
      signer: KeyedCertificate = ca,
    ): Promise<DeviceIdentity & { certificateId: string }> {
      const issued = await issueCertificate(signer, { subject: { CN: cn } });
      return {
        clientId: cn,
        certificatePem: issued.certificatePem,
        privateKeyPem: issued.privateKeyPem,
        certificateId: certificateIdOf(issued.certificatePem),
      };
    },
    status,
    /**
     * Connects like firmware (retrying with backoff) until provisioned, or until the certificate is
     * quarantined or revoked (`stopReason`); a connected client is ended on close.
     */
    async connect(device: DeviceIdentity & { certificateId: string }) {
      const result = await connectWithRetry(device, endpoint, {
        deadlineMs: 20_000,
        baseDelayMs: 50,
        shouldStop: async () => {
          const now = status(device.certificateId);
          return now === "INACTIVE" || now === "REVOKED" ? now : undefined;
        },
      });
      if (result.client) clients.push(result.client);
      return result;
    },
    /** Calls the admin API with the local bearer token; the answer's status and parsed JSON body. */
    async admin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const response = await fetch(`${stack.endpoints.adminApi}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${stack.adminToken}`,
          "content-type": "application/json",
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return {
        status: response.status,
        json: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>),
      };
    },
    async close() {
      for (const client of clients) client.end(true);
      await stack.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
