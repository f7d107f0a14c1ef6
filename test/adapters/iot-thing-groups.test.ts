import {
  DescribeThingGroupCommand,
  IoTClient,
  ResourceNotFoundException,
  ThrottlingException,
} from "@aws-sdk/client-iot";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { IotRegistryAdapter } from "../../adapters/iot.ts";
import { TransientError } from "../../domain/errors.ts";

/** DescribeThingGroup through the adapter: what a reference check reads of a thing group. */
const client = new IoTClient({ region: "eu-west-1" });
const iot = mockClient(client);
const adapter = new IotRegistryAdapter(client);

beforeEach(() => iot.reset());

describe("describeThingGroup", () => {
  it("sends DescribeThingGroup and answers the group", async () => {
    // Prepare
    iot.on(DescribeThingGroupCommand).resolves({ thingGroupName: "plant-7" });

    // Act
    const group = await adapter.describeThingGroup("plant-7");

    // Assess
    expect(group).toEqual({ thingGroupName: "plant-7" });
    expect(iot.commandCalls(DescribeThingGroupCommand)[0]?.args[0].input).toEqual({
      thingGroupName: "plant-7",
    });
  });

  it("answers undefined for a group that does not exist, and a TransientError on throttling", async () => {
    // Prepare
    iot
      .on(DescribeThingGroupCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: "nope", $metadata: {} }))
      .rejectsOnce(new ThrottlingException({ message: "slow down", $metadata: {} }));

    // Act
    const missing = await adapter.describeThingGroup("absent");
    const throttled = await adapter.describeThingGroup("busy").catch((e) => e);

    // Assess
    expect(missing).toBeUndefined();
    expect(throttled).toBeInstanceOf(TransientError);
  });
});
