import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetPolicyCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListPolicyVersionsCommand,
  ListPrincipalThingsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  RemoveThingFromThingGroupCommand,
  UpdateCertificateCommand,
  UpdateThingCommand,
} from "@aws-sdk/client-iot";
import { AlreadyExistsError, JitrError, NotFoundError, TransientError } from "../domain/errors.ts";
import type {
  CertificateDescription,
  IotInventoryPort,
  IotPort,
  PolicyDescription,
  PolicyVersion,
  ThingDescription,
  ThingGroupDescription,
} from "../domain/ports.ts";
import type { CertificateStatus } from "../domain/types.ts";
import { errorDetail, errorName, isTransientAwsError } from "./aws-errors.ts";

const TRANSIENT_IOT_ERRORS: ReadonlySet<string> = new Set([
  "ThrottlingException",
  "ServiceUnavailableException",
  "InternalFailureException",
  "InternalException",
  "VersionConflictException",
]);

/**
 * Maps an error from the IoT client to the service's errors. `operation` is the IoT API name and
 * `resource` names what it acted on (a thing, policy or certificate id — never a PEM or key).
 * An error that already is a JitrError is returned as it is.
 */
export function mapIotError(error: unknown, operation: string, resource: string): JitrError {
  if (error instanceof JitrError) return error;
  const message = `IoT ${operation} failed for ${resource}: ${errorDetail(error)}`;
  const name = errorName(error);
  if (name === "ResourceNotFoundException") return new NotFoundError(message, { cause: error });
  if (name === "ResourceAlreadyExistsException") return new AlreadyExistsError(message, { cause: error });
  if (isTransientAwsError(error, TRANSIENT_IOT_ERRORS)) return new TransientError(message, { cause: error });
  return new JitrError(message, { cause: error });
}

const CERTIFICATE_STATUSES: ReadonlySet<string> = new Set<CertificateStatus>([
  "ACTIVE",
  "INACTIVE",
  "REVOKED",
  "PENDING_TRANSFER",
  "REGISTER_INACTIVE",
  "PENDING_ACTIVATION",
]);

const isCertificateStatus = (value: string | undefined): value is CertificateStatus =>
  value !== undefined && CERTIFICATE_STATUSES.has(value);

/**
 * The IoT registry through the AWS SDK: one SDK call per port method, errors mapped by
 * {@link mapIotError}. Describe/Get methods return `undefined` when the resource does not exist.
 */
export class IotRegistryAdapter implements IotPort, IotInventoryPort {
  readonly #client: IoTClient;

  constructor(client: IoTClient) {
    this.#client = client;
  }

  async describeCertificate(certificateId: string): Promise<CertificateDescription | undefined> {
    const resource = `certificate ${certificateId}`;
    const output = await this.#find("DescribeCertificate", resource, () =>
      this.#client.send(new DescribeCertificateCommand({ certificateId })),
    );
    if (output === undefined) return undefined;
    const description = output.certificateDescription;
    if (description === undefined) return undefined;
    const { status, certificateArn, certificatePem, caCertificateId } = description;
    if (certificateArn === undefined || certificatePem === undefined) {
      throw new JitrError(`IoT DescribeCertificate returned an incomplete description for ${resource}`);
    }
    if (!isCertificateStatus(status)) {
      throw new JitrError(
        `IoT DescribeCertificate returned unknown status ${String(status)} for ${resource}`,
      );
    }
    return {
      certificateId: description.certificateId ?? certificateId,
      certificateArn,
      status,
      certificatePem,
      ...(caCertificateId === undefined ? {} : { caCertificateId }),
    };
  }

  async updateCertificateStatus(
    certificateId: string,
    status: "ACTIVE" | "INACTIVE" | "REVOKED",
  ): Promise<void> {
    await this.#call("UpdateCertificate", `certificate ${certificateId}`, () =>
      this.#client.send(new UpdateCertificateCommand({ certificateId, newStatus: status })),
    );
  }

  async describeThingType(thingTypeName: string): Promise<{ deprecated: boolean } | undefined> {
    const output = await this.#find("DescribeThingType", `thing type ${thingTypeName}`, () =>
      this.#client.send(new DescribeThingTypeCommand({ thingTypeName })),
    );
    if (output === undefined) return undefined;
    return { deprecated: output.thingTypeMetadata?.deprecated ?? false };
  }

  async describeThing(thingName: string): Promise<ThingDescription | undefined> {
    const output = await this.#find("DescribeThing", `thing ${thingName}`, () =>
      this.#client.send(new DescribeThingCommand({ thingName })),
    );
    if (output === undefined) return undefined;
    return {
      thingName: output.thingName ?? thingName,
      ...(output.thingTypeName === undefined ? {} : { thingTypeName: output.thingTypeName }),
      attributes: { ...output.attributes },
    };
  }

  async createThing(thing: ThingDescription): Promise<void> {
    await this.#call("CreateThing", `thing ${thing.thingName}`, () =>
      this.#client.send(
        new CreateThingCommand({
          thingName: thing.thingName,
          ...(thing.thingTypeName === undefined ? {} : { thingTypeName: thing.thingTypeName }),
          attributePayload: { attributes: { ...thing.attributes } },
        }),
      ),
    );
  }

  /**
   * Makes the thing exactly as described: the attributes are replaced (`merge: false`), and the
   * thing type is set, or removed (`removeThingType: true`) when the description has none. The
   * adapter does not read the thing first (one call per method), so the removal is requested
   * whether or not the thing had a type.
   */
  async updateThing(thing: ThingDescription): Promise<void> {
    await this.#call("UpdateThing", `thing ${thing.thingName}`, () =>
      this.#client.send(
        new UpdateThingCommand({
          thingName: thing.thingName,
          ...(thing.thingTypeName === undefined
            ? { removeThingType: true }
            : { thingTypeName: thing.thingTypeName }),
          attributePayload: { attributes: { ...thing.attributes }, merge: false },
        }),
      ),
    );
  }

  async deleteThing(thingName: string): Promise<void> {
    await this.#call("DeleteThing", `thing ${thingName}`, () =>
      this.#client.send(new DeleteThingCommand({ thingName })),
    );
  }

  async addThingToThingGroup(thingName: string, thingGroupName: string): Promise<void> {
    await this.#call("AddThingToThingGroup", `thing ${thingName} and thing group ${thingGroupName}`, () =>
      this.#client.send(new AddThingToThingGroupCommand({ thingName, thingGroupName })),
    );
  }

  async describeThingGroup(thingGroupName: string): Promise<ThingGroupDescription | undefined> {
    const resource = `thing group ${thingGroupName}`;
    const output = await this.#find("DescribeThingGroup", resource, () =>
      this.#client.send(new DescribeThingGroupCommand({ thingGroupName })),
    );
    if (output === undefined) return undefined;
    if (output.thingGroupArn === undefined) {
      throw new JitrError(`IoT DescribeThingGroup returned no ARN for ${resource}`);
    }
    const rootToParent = output.thingGroupMetadata?.rootToParentThingGroups ?? [];
    return {
      thingGroupName: output.thingGroupName ?? thingGroupName,
      thingGroupArn: output.thingGroupArn,
      parentGroupNames: rootToParent.flatMap((g) => (g.groupName ? [g.groupName] : [])).reverse(),
    };
  }

  async getPolicy(policyName: string): Promise<PolicyDescription | undefined> {
    const resource = `policy ${policyName}`;
    const output = await this.#find("GetPolicy", resource, () =>
      this.#client.send(new GetPolicyCommand({ policyName })),
    );
    if (output === undefined) return undefined;
    if (output.policyDocument === undefined || output.defaultVersionId === undefined) {
      throw new JitrError(`IoT GetPolicy returned an incomplete description for ${resource}`);
    }
    return {
      policyName: output.policyName ?? policyName,
      document: output.policyDocument,
      defaultVersionId: output.defaultVersionId,
    };
  }

  async createPolicy(policyName: string, document: string): Promise<void> {
    await this.#call("CreatePolicy", `policy ${policyName}`, () =>
      this.#client.send(new CreatePolicyCommand({ policyName, policyDocument: document })),
    );
  }

  async listPolicyVersions(policyName: string): Promise<PolicyVersion[]> {
    const resource = `policy ${policyName}`;
    const output = await this.#call("ListPolicyVersions", resource, () =>
      this.#client.send(new ListPolicyVersionsCommand({ policyName })),
    );
    return (output.policyVersions ?? []).map((version) => {
      if (version.versionId === undefined) {
        throw new JitrError(`IoT ListPolicyVersions returned a version without id for ${resource}`);
      }
      return {
        versionId: version.versionId,
        isDefault: version.isDefaultVersion ?? false,
        createdAt: version.createDate ?? new Date(0),
      };
    });
  }

  async createPolicyVersion(policyName: string, document: string): Promise<void> {
    await this.#call("CreatePolicyVersion", `policy ${policyName}`, () =>
      this.#client.send(
        new CreatePolicyVersionCommand({ policyName, policyDocument: document, setAsDefault: true }),
      ),
    );
  }

  async deletePolicyVersion(policyName: string, versionId: string): Promise<void> {
    await this.#call("DeletePolicyVersion", `policy ${policyName} version ${versionId}`, () =>
      this.#client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: versionId })),
    );
  }

  async deletePolicy(policyName: string): Promise<void> {
    await this.#call("DeletePolicy", `policy ${policyName}`, () =>
      this.#client.send(new DeletePolicyCommand({ policyName })),
    );
  }

  async attachPolicy(policyName: string, target: string): Promise<void> {
    await this.#call("AttachPolicy", `policy ${policyName} and ${target}`, () =>
      this.#client.send(new AttachPolicyCommand({ policyName, target })),
    );
  }

  async detachPolicy(policyName: string, target: string): Promise<void> {
    await this.#call("DetachPolicy", `policy ${policyName} and ${target}`, () =>
      this.#client.send(new DetachPolicyCommand({ policyName, target })),
    );
  }

  /**
   * Attaches the certificate to the thing exclusively (`EXCLUSIVE_THING`): AWS IoT then attaches it to
   * no other thing, refuses the call when it is attached to another thing already, and resolves the
   * thing policy variables from the certificate whatever the MQTT client id.
   */
  async attachThingPrincipal(thingName: string, certificateArn: string): Promise<void> {
    await this.#call("AttachThingPrincipal", `thing ${thingName} and ${certificateArn}`, () =>
      this.#client.send(
        new AttachThingPrincipalCommand({
          thingName,
          principal: certificateArn,
          thingPrincipalType: "EXCLUSIVE_THING",
        }),
      ),
    );
  }

  async detachThingPrincipal(thingName: string, certificateArn: string): Promise<void> {
    await this.#call("DetachThingPrincipal", `thing ${thingName} and ${certificateArn}`, () =>
      this.#client.send(new DetachThingPrincipalCommand({ thingName, principal: certificateArn })),
    );
  }

  /** Every policy attached to a target, following pages. */
  async listAttachedPolicies(target: string): Promise<string[]> {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const output = await this.#call("ListAttachedPolicies", `target ${target}`, () =>
        this.#client.send(
          new ListAttachedPoliciesCommand({ target, recursive: false, marker, pageSize: 250 }),
        ),
      );
      for (const policy of output.policies ?? []) if (policy.policyName) names.push(policy.policyName);
      marker = output.nextMarker;
    } while (marker);
    return names;
  }

  /** Every thing attached to a principal, following pages. */
  async listPrincipalThings(principal: string): Promise<string[]> {
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const output = await this.#call("ListPrincipalThings", `principal ${principal}`, () =>
        this.#client.send(new ListPrincipalThingsCommand({ principal, nextToken, maxResults: 250 })),
      );
      names.push(...(output.things ?? []));
      nextToken = output.nextToken;
    } while (nextToken);
    return names;
  }

  /** Every principal attached to a thing, following pages. */
  async listThingPrincipals(thingName: string): Promise<string[]> {
    const principals: string[] = [];
    let nextToken: string | undefined;
    do {
      const output = await this.#call("ListThingPrincipals", `thing ${thingName}`, () =>
        this.#client.send(new ListThingPrincipalsCommand({ thingName, nextToken, maxResults: 250 })),
      );
      principals.push(...(output.principals ?? []));
      nextToken = output.nextToken;
    } while (nextToken);
    return principals;
  }

  /** Every thing group the thing is a direct member of, following pages. */
  async listThingGroupsForThing(thingName: string): Promise<string[]> {
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const output = await this.#call("ListThingGroupsForThing", `thing ${thingName}`, () =>
        this.#client.send(new ListThingGroupsForThingCommand({ thingName, nextToken, maxResults: 250 })),
      );
      for (const group of output.thingGroups ?? []) if (group.groupName) names.push(group.groupName);
      nextToken = output.nextToken;
    } while (nextToken);
    return names;
  }

  async removeThingFromThingGroup(thingName: string, thingGroupName: string): Promise<void> {
    await this.#call(
      "RemoveThingFromThingGroup",
      `thing ${thingName} and thing group ${thingGroupName}`,
      () => this.#client.send(new RemoveThingFromThingGroupCommand({ thingName, thingGroupName })),
    );
  }

  /** Runs one SDK call, mapping its errors. */
  async #call<T>(operation: string, resource: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw mapIotError(error, operation, resource);
    }
  }

  /** Like #call, but a missing resource yields `undefined`. */
  async #find<T>(operation: string, resource: string, send: () => Promise<T>): Promise<T | undefined> {
    try {
      return await send();
    } catch (error) {
      if (errorName(error) === "ResourceNotFoundException") return undefined;
      throw mapIotError(error, operation, resource);
    }
  }
}
