/** The IoT inventory listings the admin reads (paged, throttling retried by the caller). */
import {
  IoTClient,
  ListAttachedPoliciesCommand,
  ListPrincipalThingsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  RemoveThingFromThingGroupCommand,
  ResourceNotFoundException,
  ThrottlingException,
} from "@aws-sdk/client-iot";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { IotRegistryAdapter } from "../../adapters/iot.ts";
import { NotFoundError, TransientError } from "../../domain/errors.ts";

const ARN = `arn:aws:iot:eu-west-1:123456789012:cert/${"a".repeat(64)}`;
const iotMock = mockClient(IoTClient);
const adapter = () => new IotRegistryAdapter(new IoTClient({ region: "eu-west-1" }));

beforeEach(() => {
  iotMock.reset();
});

describe("IoT listings", () => {
  it("follows ListAttachedPolicies markers to the last page", async () => {
    // Prepare
    iotMock
      .on(ListAttachedPoliciesCommand, { target: ARN, marker: undefined })
      .resolves({ policies: [{ policyName: "p1" }], nextMarker: "m2" })
      .on(ListAttachedPoliciesCommand, { target: ARN, marker: "m2" })
      .resolves({ policies: [{ policyName: "p2" }] });

    // Act
    const names = await adapter().listAttachedPolicies(ARN);

    // Assess
    expect(names).toEqual(["p1", "p2"]);
    expect(iotMock).toHaveReceivedCommandTimes(ListAttachedPoliciesCommand, 2);
  });

  it("follows ListPrincipalThings and ListThingPrincipals tokens", async () => {
    // Prepare
    iotMock
      .on(ListPrincipalThingsCommand, { principal: ARN, nextToken: undefined })
      .resolves({ things: ["t1"], nextToken: "n" })
      .on(ListPrincipalThingsCommand, { principal: ARN, nextToken: "n" })
      .resolves({ things: ["t2"] })
      .on(ListThingPrincipalsCommand, { thingName: "t1" })
      .resolves({ principals: [ARN] });

    // Act
    const things = await adapter().listPrincipalThings(ARN);
    const principals = await adapter().listThingPrincipals("t1");

    // Assess
    expect(things).toEqual(["t1", "t2"]);
    expect(principals).toEqual([ARN]);
  });

  it("follows ListThingGroupsForThing tokens and takes a thing out of a group by name", async () => {
    // Prepare
    iotMock
      .on(ListThingGroupsForThingCommand, { thingName: "t1", nextToken: undefined })
      .resolves({ thingGroups: [{ groupName: "g1" }], nextToken: "n" })
      .on(ListThingGroupsForThingCommand, { thingName: "t1", nextToken: "n" })
      .resolves({ thingGroups: [{ groupName: "g2" }] })
      .on(RemoveThingFromThingGroupCommand)
      .resolves({});

    // Act
    const groups = await adapter().listThingGroupsForThing("t1");
    await adapter().removeThingFromThingGroup("t1", "g1");

    // Assess
    expect(groups).toEqual(["g1", "g2"]);
    expect(iotMock).toHaveReceivedCommandWith(RemoveThingFromThingGroupCommand, {
      thingName: "t1",
      thingGroupName: "g1",
    });
  });

  it("maps a missing thing group on removal to NotFoundError", async () => {
    // Prepare
    iotMock
      .on(RemoveThingFromThingGroupCommand)
      .rejects(new ResourceNotFoundException({ message: "no group", $metadata: {} }));

    // Act
    const removal = adapter().removeThingFromThingGroup("t1", "gone");

    // Assess
    await expect(removal).rejects.toBeInstanceOf(NotFoundError);
  });

  it("maps throttling to TransientError", async () => {
    // Prepare
    iotMock
      .on(ListThingPrincipalsCommand)
      .rejects(new ThrottlingException({ message: "slow down", $metadata: {} }));

    // Act
    const listing = adapter().listThingPrincipals("t1");

    // Assess
    await expect(listing).rejects.toBeInstanceOf(TransientError);
  });
});
