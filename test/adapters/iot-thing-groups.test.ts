import {
  AttachPolicyCommand,
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
  it("sends DescribeThingGroup and answers the group, its ARN and its parents nearest first", async () => {
    // Prepare
    const arn = "arn:aws:iot:eu-west-1:123456789012:thinggroup/plant-7";
    iot.on(DescribeThingGroupCommand).resolves({
      thingGroupName: "plant-7",
      thingGroupArn: arn,
      thingGroupMetadata: {
        rootToParentThingGroups: [{ groupName: "fleet" }, { groupName: "europe" }],
      },
    });

    // Act
    const group = await adapter.describeThingGroup("plant-7");

    // Assess
    expect(group).toEqual({
      thingGroupName: "plant-7",
      thingGroupArn: arn,
      parentGroupNames: ["europe", "fleet"],
    });
    expect(iot.commandCalls(DescribeThingGroupCommand)[0]?.args[0].input).toEqual({
      thingGroupName: "plant-7",
    });
  });

  it("refuses an answer without the group's ARN (a policy could not be attached to the group)", async () => {
    iot.on(DescribeThingGroupCommand).resolves({ thingGroupName: "plant-7" });
    await expect(adapter.describeThingGroup("plant-7")).rejects.toThrow(/no ARN/);
  });

  it("attaches a policy to a thing group by its ARN (AttachPolicy with the group as target)", async () => {
    iot.on(AttachPolicyCommand).resolves({});
    const arn = "arn:aws:iot:eu-west-1:123456789012:thinggroup/plant-7";
    await adapter.attachPolicy("jitr-sensor", arn);
    expect(iot.commandCalls(AttachPolicyCommand)[0]?.args[0].input).toEqual({
      policyName: "jitr-sensor",
      target: arn,
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
