import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { type AwsEndpoint, type AwsEndpointOptions, startAwsEndpoint } from "../../../local/aws/index.ts";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

export interface Harness {
  endpoint: AwsEndpoint;
  iot: IoTClient;
  dynamodb: DynamoDBClient;
  close(): Promise<void>;
}

/** Starts an in-memory endpoint on an OS-picked port with real SDK clients pointed at it. */
export async function startHarness(options: AwsEndpointOptions = {}, maxAttempts = 1): Promise<Harness> {
  const endpoint = await startAwsEndpoint({ port: 0, quotas: { enabled: false }, faults: {}, ...options });
  const config = { endpoint: endpoint.url, region: "us-east-1", credentials, maxAttempts };
  const iot = new IoTClient(config);
  const dynamodb = new DynamoDBClient(config);
  return {
    endpoint,
    iot,
    dynamodb,
    async close() {
      iot.destroy();
      dynamodb.destroy();
      await endpoint.close();
    },
  };
}

export const ACCOUNT = "123456789012";
export const REGION = "us-east-1";
export const arn = (kind: string, id: string): string => `arn:aws:iot:${REGION}:${ACCOUNT}:${kind}/${id}`;

export const policyDocument = (statements: object[]): string =>
  JSON.stringify({ Version: "2012-10-17", Statement: statements });

export const allowAll = policyDocument([{ Effect: "Allow", Action: "iot:*", Resource: "*" }]);
