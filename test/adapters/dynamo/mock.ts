import { ConditionalCheckFailedException, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";

/** A document client whose commands the tests answer (reset it before each test). */
export const doc = createDocumentClient(new DynamoDBClient({ region: "eu-west-1" }));
export const ddb = mockClient(doc);

export const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} });

/** What the promise rejected with (undefined when it resolved). */
export async function thrownBy(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
}
