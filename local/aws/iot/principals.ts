import { pageLimit, paginate } from "./common.ts";
import { invalid, notFound } from "./errors.ts";
import type { CertificateRecord, IotState } from "./state.ts";
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

/** AttachThingPrincipal: an exclusively attached certificate belongs to one thing only. */
export function attachThingPrincipal(
  state: IotState,
  thingName: string,
  principal: string | undefined,
  type: string | undefined,
): void {
  const thing = requireThing(state, thingName);
  const certificate = requirePrincipalCertificate(state, principal);
  const principalType = type ?? "NON_EXCLUSIVE_THING";
  if (principalType !== "EXCLUSIVE_THING" && principalType !== "NON_EXCLUSIVE_THING")
    throw invalid(`Invalid thingPrincipalType: ${principalType}`);
  const arn = certificate.certificateArn;
  const existing = state.thingPrincipals.filter((tp) => tp.principal === arn);
  const same = existing.find((tp) => tp.thingName === thing.thingName);
  if (same && same.type === principalType) return;
  const others = existing.filter((tp) => tp.thingName !== thing.thingName);
  if (principalType === "EXCLUSIVE_THING" && others.length > 0)
    throw invalid(`Principal ${arn} is already attached to another thing; it cannot be attached exclusively`);
  if (others.some((tp) => tp.type === "EXCLUSIVE_THING"))
    throw invalid(`Principal ${arn} is exclusively attached to another thing`);
  if (same) same.type = principalType;
  else state.thingPrincipals.push({ thingName: thing.thingName, principal: arn, type: principalType });
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
