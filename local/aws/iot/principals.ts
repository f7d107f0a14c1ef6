import { pageLimit, paginate } from "./common.ts";
import { invalid, notFound } from "./errors.ts";
import type { CertificateRecord, IotState, ThingPrincipalType } from "./state.ts";
import { requireThing } from "./things.ts";

/** Thing principals of the IoT emulator: the certificates attached to things, exclusively or not. */

export interface PagedByToken {
  nextToken?: string;
  maxResults?: number;
}

/** The certificate a principal names: only certificate ARNs of this account and region are accepted (stricter reading). */
export function requirePrincipalCertificate(
  state: IotState,
  principal: string | undefined,
): CertificateRecord {
  if (!principal) throw invalid("principal is required");
  const certificateId = state.certificateIdFromArn(principal);
  if (certificateId === undefined) throw invalid(`Invalid principal: ${principal}`);
  const certificate = state.certificates.get(certificateId);
  if (!certificate) throw notFound(`Certificate ${certificateId} does not exist`);
  return certificate;
}

/** Names of the things a principal (certificate ARN) is attached to. */
export function thingsForPrincipal(state: IotState, principal: string): string[] {
  return state.thingPrincipals.filter((tp) => tp.principal === principal).map((tp) => tp.thingName);
}

/** The thing a principal is attached to exclusively (EXCLUSIVE_THING), if any. */
export function exclusiveThingOf(state: IotState, principal: string): string | undefined {
  return state.thingPrincipals.find((tp) => tp.principal === principal && tp.type === "EXCLUSIVE_THING")
    ?.thingName;
}

function principalType(type: string | undefined): ThingPrincipalType {
  const value = type ?? "NON_EXCLUSIVE_THING";
  if (value !== "EXCLUSIVE_THING" && value !== "NON_EXCLUSIVE_THING")
    throw invalid(`Invalid thingPrincipalType: ${value}`);
  return value;
}

/**
 * AttachThingPrincipal. An exclusive attachment makes the thing the only one attached to the
 * certificate: it is refused while the certificate is attached to another thing, and a certificate
 * attached exclusively can be attached to another thing only once detached from its thing (AWS
 * documents both). Stricter reading where AWS is silent: attaching again to the same thing without
 * the exclusive type leaves an exclusive attachment exclusive (only a detach ends it).
 */
export function attachThingPrincipal(
  state: IotState,
  thingName: string,
  principal: string | undefined,
  type: string | undefined,
): void {
  const thing = requireThing(state, thingName);
  const certificate = requirePrincipalCertificate(state, principal);
  const wanted = principalType(type);
  const arn = certificate.certificateArn;
  const existing = state.thingPrincipals.filter((tp) => tp.principal === arn);
  const exclusive = existing.find((tp) => tp.type === "EXCLUSIVE_THING");
  if (exclusive && exclusive.thingName !== thing.thingName)
    throw invalid(
      `Principal ${arn} is attached exclusively to thing ${exclusive.thingName}; detach it there first`,
    );
  const others = existing.filter((tp) => tp.thingName !== thing.thingName);
  if (wanted === "EXCLUSIVE_THING" && others.length > 0)
    throw invalid(
      `Principal ${arn} is attached to thing ${others.map((tp) => tp.thingName).join(", ")}; ` +
        "it cannot be attached exclusively to another thing",
    );
  const same = existing.find((tp) => tp.thingName === thing.thingName);
  if (same) {
    if (same.type === wanted || same.type === "EXCLUSIVE_THING") return;
    same.type = wanted;
  } else {
    state.thingPrincipals.push({ thingName: thing.thingName, principal: arn, type: wanted });
  }
  state.save();
}

/** DetachThingPrincipal: detaching a principal that is not attached succeeds without change (detach calls are idempotent). */
export function detachThingPrincipal(
  state: IotState,
  thingName: string,
  principal: string | undefined,
): void {
  const thing = requireThing(state, thingName);
  const certificate = requirePrincipalCertificate(state, principal);
  const before = state.thingPrincipals.length;
  state.thingPrincipals = state.thingPrincipals.filter(
    (tp) => !(tp.thingName === thing.thingName && tp.principal === certificate.certificateArn),
  );
  if (state.thingPrincipals.length !== before) state.save();
}

/** ListThingPrincipals, sorted. */
export function listThingPrincipals(state: IotState, input: PagedByToken & { thingName: string }) {
  const thing = requireThing(state, input.thingName);
  const principals = state.thingPrincipals
    .filter((tp) => tp.thingName === thing.thingName)
    .map((tp) => tp.principal)
    .sort();
  const page = paginate(principals, input.nextToken, pageLimit(input.maxResults, 25, 250));
  return { principals: page.items, nextToken: page.next };
}

/** ListPrincipalThings, sorted. */
export function listPrincipalThings(state: IotState, input: PagedByToken & { principal?: string }) {
  const certificate = requirePrincipalCertificate(state, input.principal);
  const things = thingsForPrincipal(state, certificate.certificateArn).sort();
  const page = paginate(things, input.nextToken, pageLimit(input.maxResults, 25, 250));
  return { things: page.items, nextToken: page.next };
}

/** ListThingPrincipalsV2: the principals with their attachment type, optionally of one type only. */
export function listThingPrincipalsV2(
  state: IotState,
  input: PagedByToken & { thingName: string; thingPrincipalType?: string },
) {
  const thing = requireThing(state, input.thingName);
  const type = input.thingPrincipalType === undefined ? undefined : principalType(input.thingPrincipalType);
  const objects = state.thingPrincipals
    .filter((tp) => tp.thingName === thing.thingName && (type === undefined || tp.type === type))
    .map((tp) => ({ principal: tp.principal, thingPrincipalType: tp.type }))
    .sort((a, b) => a.principal.localeCompare(b.principal));
  const page = paginate(objects, input.nextToken, pageLimit(input.maxResults, 25, 250));
  return { thingPrincipalObjects: page.items, nextToken: page.next };
}

/** ListPrincipalThingsV2: the things with their attachment type, optionally of one type only. */
export function listPrincipalThingsV2(
  state: IotState,
  input: PagedByToken & { principal?: string; thingPrincipalType?: string },
) {
  const certificate = requirePrincipalCertificate(state, input.principal);
  const type = input.thingPrincipalType === undefined ? undefined : principalType(input.thingPrincipalType);
  const objects = state.thingPrincipals
    .filter((tp) => tp.principal === certificate.certificateArn && (type === undefined || tp.type === type))
    .map((tp) => ({ thingName: tp.thingName, thingPrincipalType: tp.type }))
    .sort((a, b) => a.thingName.localeCompare(b.thingName));
  const page = paginate(objects, input.nextToken, pageLimit(input.maxResults, 25, 250));
  return { principalThingObjects: page.items, nextToken: page.next };
}
