import {
  type EvaluationContext,
  type EvaluationResult,
  evaluate,
  evaluateDetailed,
} from "../policy-evaluator.ts";
import { invalid } from "./errors.ts";
import { defaultDocument, policyNamesAttachedTo, requirePolicy } from "./policies.ts";
import { requirePrincipalCertificate, thingsForPrincipal } from "./principals.ts";
import type { IotState, ThingRecord } from "./state.ts";
import { groupsWithParentsOf } from "./thing-groups.ts";
import { certificateIdOf, commonNameOf, parseCertificate } from "./x509.ts";

/**
 * Authorization of device connections, as AWS IoT Core applies it: the policies in effect for a
 * certificate are those attached to it plus, when the MQTT client id names a thing attached to
 * the certificate, those attached to that thing's groups and their parent groups. The device
 * gateway checks each connect, publish, subscribe and receive here, and TestAuthorization (which
 * AWS documents as simulating the device gateway's authorization) evaluates the same policies.
 */

/** What a certificate contributes to the policy variables; fixed for the life of a connection. */
export interface CertificateVariables {
  certificateId: string;
  subjectCommonName?: string;
  subjectSerialNumber?: string;
  certificateSubject: Record<string, string>;
  certificateSerialNumber?: string;
}

/** A device connection as the policies see it: the certificate it authenticated with and its client id. */
export interface Connection {
  certificate: CertificateVariables;
  clientId?: string;
}

export interface TestAuthorizationInput {
  principal?: string;
  clientId?: string;
  authInfos?: { actionType?: string; resources?: string[] }[];
  policyNamesToAdd?: string[];
  policyNamesToSkip?: string[];
}

/** Subject fields a connection's policies may name, by IoT name, with the x509 short names. */
const SUBJECT_FIELDS: Record<string, string> = {
  CommonName: "CN",
  Organization: "O",
  OrganizationalUnit: "OU",
  Country: "C",
  State: "ST",
  Locality: "L",
  SerialNumber: "serialNumber",
};

const ACTIONS: Record<string, string> = {
  PUBLISH: "iot:Publish",
  SUBSCRIBE: "iot:Subscribe",
  RECEIVE: "iot:Receive",
  CONNECT: "iot:Connect",
};

/** The policy variables a certificate (PEM or DER) provides; undefined when it does not parse. */
export function certificateVariables(derOrPem: string | Uint8Array): CertificateVariables | undefined {
  const cert = parseCertificate(derOrPem);
  if (!cert) return undefined;
  const subject: Record<string, string> = {};
  for (const [name, short] of Object.entries(SUBJECT_FIELDS)) {
    const value = cert.subjectName.getField(short)[0];
    if (value !== undefined) subject[name] = value;
  }
  const commonName = commonNameOf(cert);
  return {
    certificateId: certificateIdOf(cert),
    ...(commonName !== undefined ? { subjectCommonName: commonName } : {}),
    ...(subject.SerialNumber !== undefined ? { subjectSerialNumber: subject.SerialNumber } : {}),
    certificateSubject: subject,
    certificateSerialNumber: cert.serialNumber,
  };
}

/** The thing a connection speaks for: the thing its client id names, when attached to its certificate. */
function connectionThing(state: IotState, connection: Connection): ThingRecord | undefined {
  const { clientId } = connection;
  if (clientId === undefined) return undefined;
  const certificateArn = state.arn("cert", connection.certificate.certificateId);
  return thingsForPrincipal(state, certificateArn).includes(clientId)
    ? state.things.get(clientId)
    : undefined;
}

function evaluationContext(connection: Connection, thing: ThingRecord | undefined): EvaluationContext {
  return {
    ...connection.certificate,
    certificateSubject: { ...connection.certificate.certificateSubject },
    ...(connection.clientId !== undefined ? { clientId: connection.clientId } : {}),
    ...(thing
      ? {
          thingName: thing.thingName,
          isAttached: true,
          thingAttributes: { ...thing.attributes },
          ...(thing.thingTypeName !== undefined ? { thingTypeName: thing.thingTypeName } : {}),
        }
      : { isAttached: false }),
  };
}

/**
 * Names of the policies in effect for a certificate: those attached to it, then those attached
 * to the groups (parents included) of the thing the connection speaks for, each once.
 */
export function effectivePolicyNames(
  state: IotState,
  certificateArn: string,
  thingName: string | undefined,
): string[] {
  const names = policyNamesAttachedTo(state, certificateArn);
  const groups = thingName === undefined ? [] : groupsWithParentsOf(state, thingName);
  for (const group of groups)
    for (const name of policyNamesAttachedTo(state, state.arn("thinggroup", group)))
      if (!names.includes(name)) names.push(name);
  return names;
}

/** The default-version documents of the named policies, in the same order. */
function documentsOf(state: IotState, names: readonly string[]): string[] {
  return names.map((name) => defaultDocument(state, name) ?? "");
}

/** Whether a connection's effective policies allow an action (e.g. `iot:Publish`) on a resource ARN. */
export function authorize(
  state: IotState,
  connection: Connection,
  action: string,
  resource: string,
): EvaluationResult {
  const thing = connectionThing(state, connection);
  const certificateArn = state.arn("cert", connection.certificate.certificateId);
  const documents = documentsOf(state, effectivePolicyNames(state, certificateArn, thing?.thingName));
  return evaluate(documents, { action, resource, context: evaluationContext(connection, thing) });
}

/**
 * TestAuthorization: evaluates each authInfo against the principal's effective policies for the
 * client id (plus policyNamesToAdd, minus policyNamesToSkip). An authInfo is ALLOWED only when
 * every resource is allowed; EXPLICIT_DENY when any resource is explicitly denied.
 */
export function testAuthorization(state: IotState, input: TestAuthorizationInput) {
  const certificate = requirePrincipalCertificate(state, input.principal);
  const authInfos = input.authInfos ?? [];
  if (authInfos.length < 1 || authInfos.length > 10) throw invalid("authInfos must have 1 to 10 entries");
  const variables = certificateVariables(certificate.certificatePem) ?? {
    certificateId: certificate.certificateId,
    certificateSubject: {},
  };
  const connection: Connection = {
    certificate: variables,
    ...(input.clientId !== undefined ? { clientId: input.clientId } : {}),
  };
  const thing = connectionThing(state, connection);
  const skip = new Set(input.policyNamesToSkip ?? []);
  const names = effectivePolicyNames(state, certificate.certificateArn, thing?.thingName).filter(
    (n) => !skip.has(n),
  );
  for (const name of input.policyNamesToAdd ?? []) {
    requirePolicy(state, name);
    if (!names.includes(name)) names.push(name);
  }
  const documents = documentsOf(state, names);
  const context = evaluationContext(connection, thing);
  const policyRef = (index: number) => {
    const name = names[index] ?? "";
    return { policyName: name, policyArn: state.arn("policy", name) };
  };
  return {
    authResults: authInfos.map((authInfo) => {
      const action = ACTIONS[authInfo.actionType ?? ""];
      if (!action) throw invalid(`Invalid actionType: ${authInfo.actionType ?? "(missing)"}`);
      const resources = authInfo.resources ?? [];
      if (resources.length === 0) throw invalid("Each authInfo needs at least one resource");
      const allowedBy = new Set<number>();
      const deniedBy = new Set<number>();
      let allAllowed = true;
      for (const resource of resources) {
        const result = evaluateDetailed(documents, { action, resource, context });
        for (const i of result.allowedBy) allowedBy.add(i);
        for (const i of result.deniedBy) deniedBy.add(i);
        if (!result.allowed) allAllowed = false;
      }
      const decision = deniedBy.size > 0 ? "EXPLICIT_DENY" : allAllowed ? "ALLOWED" : "IMPLICIT_DENY";
      const implicit = names.map((_, i) => i).filter((i) => !allowedBy.has(i) && !deniedBy.has(i));
      return {
        authInfo: { actionType: authInfo.actionType, resources: [...resources] },
        allowed: { policies: [...allowedBy].map(policyRef) },
        denied: {
          implicitDeny: { policies: decision === "IMPLICIT_DENY" ? implicit.map(policyRef) : [] },
          explicitDeny: { policies: [...deniedBy].map(policyRef) },
        },
        authDecision: decision,
        missingContextValues: [] as string[],
      };
    }),
  };
}
