import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CertificateStateException,
  CertificateValidationException,
  CreatePolicyCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteConflictException,
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetRegistrationCodeCommand,
  InvalidRequestException,
  ListCACertificatesCommand,
  ListCertificatesByCACommand,
  ListCertificatesCommand,
  RegisterCACertificateCommand,
  RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  UpdateCACertificateCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IotError } from "../../../local/aws/index.ts";
import { createCa, issueCertificate, type TestCertificate, verificationCertificate } from "./certs.ts";
import { allowAll, arn, type Harness, startHarness } from "./helpers.ts";

let h: Harness;
let ca: TestCertificate;
let otherCa: TestCertificate;

async function registerCa(
  caCert: TestCertificate,
  flags: { setAsActive?: boolean; allowAutoRegistration?: boolean } = {
    setAsActive: true,
    allowAutoRegistration: true,
  },
) {
  const { registrationCode } = await h.iot.send(new GetRegistrationCodeCommand({}));
  const verification = await verificationCertificate(caCert, registrationCode ?? "");
  return h.iot.send(
    new RegisterCACertificateCommand({
      caCertificate: caCert.pem,
      verificationCertificate: verification.pem,
      ...flags,
    }),
  );
}

beforeAll(async () => {
  h = await startHarness();
  ca = await createCa({ commonName: "Fleet CA" });
  otherCa = await createCa({ commonName: "Unregistered CA" });
  await registerCa(ca);
});
afterAll(() => h.close());

describe("CA certificates", () => {
  it("keeps the registration code stable", async () => {
    const a = await h.iot.send(new GetRegistrationCodeCommand({}));
    const b = await h.iot.send(new GetRegistrationCodeCommand({}));
    expect(a.registrationCode).toMatch(/^[0-9a-f]{64}$/);
    expect(b.registrationCode).toBe(a.registrationCode);
  });

  it("describes a registered CA with its flags and an AWS ARN", async () => {
    const out = await h.iot.send(new DescribeCACertificateCommand({ certificateId: ca.id }));
    const d = out.certificateDescription;
    expect(d?.certificateId).toBe(ca.id);
    expect(d?.certificateArn).toBe(arn("cacert", ca.id));
    expect(d?.status).toBe("ACTIVE");
    expect(d?.autoRegistrationStatus).toBe("ENABLE");
    expect(d?.certificatePem).toContain("BEGIN CERTIFICATE");
    expect(d?.creationDate).toBeInstanceOf(Date);
    expect(d?.validity?.notAfter).toBeInstanceOf(Date);
  });

  it("refuses a verification certificate whose CN is not the registration code", async () => {
    const candidate = await createCa({ commonName: "Candidate" });
    const wrongCn = await verificationCertificate(candidate, "not-the-code");
    const err = await h.iot
      .send(
        new RegisterCACertificateCommand({
          caCertificate: candidate.pem,
          verificationCertificate: wrongCn.pem,
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertificateValidationException);
    const list = await h.iot.send(new ListCACertificatesCommand({}));
    expect(list.certificates?.map((c) => c.certificateId)).not.toContain(candidate.id);
  });

  it("refuses a verification certificate the CA did not sign", async () => {
    const candidate = await createCa({ commonName: "Candidate 2" });
    const { registrationCode } = await h.iot.send(new GetRegistrationCodeCommand({}));
    const foreign = await verificationCertificate(otherCa, registrationCode ?? "");
    await expect(
      h.iot.send(
        new RegisterCACertificateCommand({
          caCertificate: candidate.pem,
          verificationCertificate: foreign.pem,
        }),
      ),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    await expect(
      h.iot.send(new DescribeCACertificateCommand({ certificateId: candidate.id })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("registers INACTIVE/DISABLE by default, keeps registrationConfig, refuses duplicates", async () => {
    const candidate = await createCa({ commonName: "Defaults CA" });
    const { registrationCode } = await h.iot.send(new GetRegistrationCodeCommand({}));
    const verification = await verificationCertificate(candidate, registrationCode ?? "");
    const out = await h.iot.send(
      new RegisterCACertificateCommand({
        caCertificate: candidate.pem,
        verificationCertificate: verification.pem,
        registrationConfig: { templateName: "jitr-template" },
      }),
    );
    expect(out.certificateId).toBe(candidate.id);
    const described = await h.iot.send(new DescribeCACertificateCommand({ certificateId: candidate.id }));
    expect(described.certificateDescription?.status).toBe("INACTIVE");
    expect(described.certificateDescription?.autoRegistrationStatus).toBe("DISABLE");
    expect(described.registrationConfig?.templateName).toBe("jitr-template");
    const dup = await h.iot
      .send(
        new RegisterCACertificateCommand({
          caCertificate: candidate.pem,
          verificationCertificate: verification.pem,
        }),
      )
      .catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(ResourceAlreadyExistsException);
    expect((dup as ResourceAlreadyExistsException).resourceId).toBe(candidate.id);
    expect((dup as ResourceAlreadyExistsException).resourceArn).toBe(arn("cacert", candidate.id));
    const byTemplate = await h.iot.send(new ListCACertificatesCommand({ templateName: "jitr-template" }));
    expect(byTemplate.certificates?.map((c) => c.certificateId)).toEqual([candidate.id]);
  });

  it("updates status and auto-registration status, refusing invalid values", async () => {
    const candidate = await createCa({ commonName: "Toggle CA" });
    await registerCa(candidate, {});
    await h.iot.send(
      new UpdateCACertificateCommand({
        certificateId: candidate.id,
        newStatus: "ACTIVE",
        newAutoRegistrationStatus: "ENABLE",
      }),
    );
    let d = await h.iot.send(new DescribeCACertificateCommand({ certificateId: candidate.id }));
    expect(d.certificateDescription?.status).toBe("ACTIVE");
    expect(d.certificateDescription?.autoRegistrationStatus).toBe("ENABLE");
    await expect(
      h.iot.send(
        new UpdateCACertificateCommand({ certificateId: candidate.id, newStatus: "REVOKED" as "ACTIVE" }),
      ),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await h.iot.send(
      new UpdateCACertificateCommand({ certificateId: candidate.id, newAutoRegistrationStatus: "DISABLE" }),
    );
    d = await h.iot.send(new DescribeCACertificateCommand({ certificateId: candidate.id }));
    expect(d.certificateDescription?.status).toBe("ACTIVE");
    expect(d.certificateDescription?.autoRegistrationStatus).toBe("DISABLE");
    await expect(
      h.iot.send(new UpdateCACertificateCommand({ certificateId: "0".repeat(64), newStatus: "ACTIVE" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});

describe("device certificates", () => {
  it("registers a certificate signed by the given CA, id = SHA-256 of the DER", async () => {
    const device = await issueCertificate(ca, { commonName: "device-reg-1" });
    const out = await h.iot.send(
      new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: ca.pem }),
    );
    expect(out.certificateId).toBe(device.id);
    expect(out.certificateArn).toBe(arn("cert", device.id));
    const d = (await h.iot.send(new DescribeCertificateCommand({ certificateId: device.id })))
      .certificateDescription;
    expect(d?.status).toBe("INACTIVE");
    expect(d?.caCertificateId).toBe(ca.id);
    expect(d?.certificateMode).toBe("DEFAULT");
    expect(d?.ownedBy).toBe("123456789012");
    expect(d?.creationDate).toBeInstanceOf(Date);
    expect(Math.abs((d?.creationDate?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    const dup = await h.iot
      .send(new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: ca.pem }))
      .catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(ResourceAlreadyExistsException);
    expect((dup as ResourceAlreadyExistsException).resourceId).toBe(device.id);
  });

  it("finds the CA by itself when caCertificatePem is omitted, honours setAsActive and status", async () => {
    const a = await issueCertificate(ca, { commonName: "device-reg-2" });
    await h.iot.send(new RegisterCertificateCommand({ certificatePem: a.pem, setAsActive: true }));
    const da = (await h.iot.send(new DescribeCertificateCommand({ certificateId: a.id })))
      .certificateDescription;
    expect(da?.status).toBe("ACTIVE");
    expect(da?.caCertificateId).toBe(ca.id);
    const b = await issueCertificate(ca, { commonName: "device-reg-3" });
    await h.iot.send(new RegisterCertificateCommand({ certificatePem: b.pem, status: "ACTIVE" }));
    const db = (await h.iot.send(new DescribeCertificateCommand({ certificateId: b.id })))
      .certificateDescription;
    expect(db?.status).toBe("ACTIVE");
  });

  it("refuses certificates not signed by the (given) registered CA, expired ones, and inactive CAs", async () => {
    const foreign = await issueCertificate(otherCa, { commonName: "foreign" });
    await expect(
      h.iot.send(new RegisterCertificateCommand({ certificatePem: foreign.pem })),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    await expect(
      h.iot.send(new RegisterCertificateCommand({ certificatePem: foreign.pem, caCertificatePem: ca.pem })),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    await expect(
      h.iot.send(
        new RegisterCertificateCommand({ certificatePem: foreign.pem, caCertificatePem: otherCa.pem }),
      ),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    const expired = await issueCertificate(ca, {
      commonName: "expired",
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    await expect(
      h.iot.send(new RegisterCertificateCommand({ certificatePem: expired.pem, caCertificatePem: ca.pem })),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    await expect(
      h.iot.send(new RegisterCertificateCommand({ certificatePem: "garbage", caCertificatePem: ca.pem })),
    ).rejects.toBeInstanceOf(CertificateValidationException);

    const inactiveCa = await createCa({ commonName: "Inactive CA" });
    await registerCa(inactiveCa, { setAsActive: false });
    const device = await issueCertificate(inactiveCa, { commonName: "under-inactive" });
    await expect(
      h.iot.send(
        new RegisterCertificateCommand({
          certificatePem: device.pem,
          caCertificatePem: inactiveCa.pem,
          status: "INACTIVE",
        }),
      ),
    ).rejects.toBeInstanceOf(CertificateValidationException);
    for (const id of [foreign.id, expired.id, device.id]) {
      await expect(h.iot.send(new DescribeCertificateCommand({ certificateId: id }))).rejects.toBeInstanceOf(
        ResourceNotFoundException,
      );
    }
  });

  it("registers without a CA in SNI_ONLY mode", async () => {
    const selfSigned = await createCa({ commonName: "standalone" });
    const out = await h.iot.send(
      new RegisterCertificateWithoutCACommand({ certificatePem: selfSigned.pem, status: "ACTIVE" }),
    );
    expect(out.certificateId).toBe(selfSigned.id);
    const d = (await h.iot.send(new DescribeCertificateCommand({ certificateId: selfSigned.id })))
      .certificateDescription;
    expect(d?.certificateMode).toBe("SNI_ONLY");
    expect(d?.caCertificateId).toBeUndefined();
    expect(d?.status).toBe("ACTIVE");
  });

  it("updates status with REVOKED terminal and PENDING_ACTIVATION refused", async () => {
    const device = await issueCertificate(ca, { commonName: "lifecycle" });
    await h.iot.send(
      new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: ca.pem }),
    );
    const events: [string, string][] = [];
    const listener = (id: string, status: string) => events.push([id, status]);
    h.endpoint.iot.on("certificateStatusChanged", listener);
    const status = async () =>
      (await h.iot.send(new DescribeCertificateCommand({ certificateId: device.id }))).certificateDescription
        ?.status;

    await h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "ACTIVE" }));
    expect(await status()).toBe("ACTIVE");
    await expect(
      h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "PENDING_ACTIVATION" })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    expect(await status()).toBe("ACTIVE");
    await h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "REVOKED" }));
    for (const newStatus of ["ACTIVE", "INACTIVE", "REVOKED"] as const) {
      await expect(
        h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus })),
      ).rejects.toBeInstanceOf(CertificateStateException);
    }
    expect(await status()).toBe("REVOKED");
    h.endpoint.iot.off("certificateStatusChanged", listener);
    expect(events).toEqual([
      [device.id, "ACTIVE"],
      [device.id, "REVOKED"],
    ]);
    await expect(
      h.iot.send(new UpdateCertificateCommand({ certificateId: "f".repeat(64), newStatus: "ACTIVE" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("refuses to activate a certificate whose CA is not ACTIVE", async () => {
    const toggled = await createCa({ commonName: "Deactivated later" });
    await registerCa(toggled);
    const device = await issueCertificate(toggled, { commonName: "orphan" });
    await h.iot.send(
      new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: toggled.pem }),
    );
    await h.iot.send(new UpdateCACertificateCommand({ certificateId: toggled.id, newStatus: "INACTIVE" }));
    await expect(
      h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "ACTIVE" })),
    ).rejects.toBeInstanceOf(CertificateStateException);
  });

  it("refuses to delete ACTIVE certificates or ones with attached policies/things", async () => {
    const device = await issueCertificate(ca, { commonName: "to-delete" });
    const { certificateArn } = await h.iot.send(
      new RegisterCertificateCommand({
        certificatePem: device.pem,
        caCertificatePem: ca.pem,
        setAsActive: true,
      }),
    );
    await expect(
      h.iot.send(new DeleteCertificateCommand({ certificateId: device.id })),
    ).rejects.toBeInstanceOf(CertificateStateException);
    await h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "INACTIVE" }));

    await h.iot.send(new CreatePolicyCommand({ policyName: "delete-guard", policyDocument: allowAll }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "delete-guard", target: certificateArn }));
    await h.iot.send(new CreateThingCommand({ thingName: "delete-guard-thing" }));
    await h.iot.send(
      new AttachThingPrincipalCommand({ thingName: "delete-guard-thing", principal: certificateArn }),
    );

    await expect(
      h.iot.send(new DeleteCertificateCommand({ certificateId: device.id })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    await h.iot.send(
      new DetachThingPrincipalCommand({ thingName: "delete-guard-thing", principal: certificateArn }),
    );
    await expect(
      h.iot.send(new DeleteCertificateCommand({ certificateId: device.id })),
    ).rejects.toBeInstanceOf(DeleteConflictException);
    // Still there after the refusals.
    expect(
      (await h.iot.send(new DescribeCertificateCommand({ certificateId: device.id }))).certificateDescription
        ?.status,
    ).toBe("INACTIVE");
    await h.iot.send(new DetachPolicyCommand({ policyName: "delete-guard", target: certificateArn }));
    await h.iot.send(new DeleteCertificateCommand({ certificateId: device.id }));
    await expect(
      h.iot.send(new DescribeCertificateCommand({ certificateId: device.id })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("forceDelete detaches policies but still refuses attached things", async () => {
    const device = await issueCertificate(ca, { commonName: "force" });
    const { certificateArn } = await h.iot.send(
      new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: ca.pem }),
    );
    await h.iot.send(new CreatePolicyCommand({ policyName: "force-policy", policyDocument: allowAll }));
    await h.iot.send(new AttachPolicyCommand({ policyName: "force-policy", target: certificateArn }));
    await h.iot.send(new DeleteCertificateCommand({ certificateId: device.id, forceDelete: true }));
    expect(h.endpoint.iot.policiesForPrincipal(certificateArn ?? "")).toEqual([]);
    await expect(
      h.iot.send(new DescribeCertificateCommand({ certificateId: device.id })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("lists certificates with pagination and by CA", async () => {
    const pageCa = await createCa({ commonName: "Paging CA" });
    await registerCa(pageCa);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const device = await issueCertificate(pageCa, { commonName: `page-${i}` });
      await h.iot.send(
        new RegisterCertificateCommand({ certificatePem: device.pem, caCertificatePem: pageCa.pem }),
      );
      ids.push(device.id);
    }
    const first = await h.iot.send(
      new ListCertificatesByCACommand({ caCertificateId: pageCa.id, pageSize: 2 }),
    );
    expect(first.certificates).toHaveLength(2);
    expect(first.nextMarker).toBeDefined();
    const second = await h.iot.send(
      new ListCertificatesByCACommand({ caCertificateId: pageCa.id, pageSize: 2, marker: first.nextMarker }),
    );
    expect(second.certificates).toHaveLength(1);
    expect(second.nextMarker).toBeUndefined();
    const seen = [...(first.certificates ?? []), ...(second.certificates ?? [])].map((c) => c.certificateId);
    expect(seen.sort()).toEqual([...ids].sort());
    const ascending = await h.iot.send(
      new ListCertificatesByCACommand({ caCertificateId: pageCa.id, ascendingOrder: true }),
    );
    expect(ascending.certificates?.map((c) => c.certificateId)).toEqual(ids);

    const all: string[] = [];
    let marker: string | undefined;
    do {
      const page = await h.iot.send(new ListCertificatesCommand({ pageSize: 2, marker }));
      all.push(...(page.certificates ?? []).map((c) => c.certificateId ?? ""));
      marker = page.nextMarker;
    } while (marker);
    expect(all).toEqual(expect.arrayContaining(ids));
    expect(new Set(all).size).toBe(all.length);
    await expect(h.iot.send(new ListCertificatesCommand({ pageSize: 1000 }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );
    await expect(
      h.iot.send(new ListCertificatesCommand({ marker: "bm90LWEtbnVtYmVy" })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
  });
});

describe("gateway helpers", () => {
  it("finds the registered CA of a certificate from PEM or DER", async () => {
    const device = await issueCertificate(ca, { commonName: "gw-1" });
    const byPem = await h.endpoint.iot.findCaForCertificate(device.pem + ca.pem);
    expect(byPem?.caCertificateId).toBe(ca.id);
    expect(byPem?.status).toBe("ACTIVE");
    expect(byPem?.autoRegistrationStatus).toBe("ENABLE");
    const byDer = await h.endpoint.iot.findCaForCertificate(new Uint8Array(device.cert.rawData));
    expect(byDer?.caCertificateId).toBe(ca.id);
    const foreign = await issueCertificate(otherCa, { commonName: "gw-foreign" });
    expect(await h.endpoint.iot.findCaForCertificate(foreign.pem)).toBeUndefined();
    expect(await h.endpoint.iot.findCaForCertificate("not a cert")).toBeUndefined();
  });

  it("auto-registers a device certificate as PENDING_ACTIVATION, visible through the API", async () => {
    const device = await issueCertificate(ca, { commonName: "jitr-device" });
    const record = await h.endpoint.iot.autoRegisterCertificate(device.pem, ca.id);
    expect(record.certificateId).toBe(device.id);
    expect(record.status).toBe("PENDING_ACTIVATION");
    expect(record.caCertificateId).toBe(ca.id);
    expect(h.endpoint.iot.describeCertificateById(device.id)?.status).toBe("PENDING_ACTIVATION");
    const d = (await h.iot.send(new DescribeCertificateCommand({ certificateId: device.id })))
      .certificateDescription;
    expect(d?.status).toBe("PENDING_ACTIVATION");
    expect(d?.certificateArn).toBe(arn("cert", device.id));
    // Idempotent: a second connection does not re-register.
    expect((await h.endpoint.iot.autoRegisterCertificate(device.pem, ca.id)).creationDate).toBe(
      record.creationDate,
    );
    await h.iot.send(new UpdateCertificateCommand({ certificateId: device.id, newStatus: "ACTIVE" }));
    expect(h.endpoint.iot.describeCertificateById(device.id)?.status).toBe("ACTIVE");
  });

  it("refuses auto-registration when the CA does not allow it or did not sign the certificate", async () => {
    const noAuto = await createCa({ commonName: "No auto CA" });
    await registerCa(noAuto, { setAsActive: true, allowAutoRegistration: false });
    const device = await issueCertificate(noAuto, { commonName: "no-auto" });
    const err = await h.endpoint.iot.autoRegisterCertificate(device.pem, noAuto.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IotError);
    expect((err as IotError).code).toBe("CertificateStateException");
    const foreign = await issueCertificate(otherCa, { commonName: "wrong-ca" });
    const err2 = await h.endpoint.iot.autoRegisterCertificate(foreign.pem, ca.id).catch((e: unknown) => e);
    expect((err2 as IotError).code).toBe("CertificateValidationException");
    expect(h.endpoint.iot.describeCertificateById(device.id)).toBeUndefined();
    expect(h.endpoint.iot.describeCertificateById(foreign.id)).toBeUndefined();
  });

  it("reports attached policies and things of a principal", async () => {
    const device = await issueCertificate(ca, { commonName: "principal" });
    const record = await h.endpoint.iot.autoRegisterCertificate(device.pem, ca.id);
    const doc = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }],
    });
    await h.iot.send(new CreatePolicyCommand({ policyName: "principal-policy", policyDocument: doc }));
    await h.iot.send(
      new AttachPolicyCommand({ policyName: "principal-policy", target: record.certificateArn }),
    );
    await h.iot.send(new CreateThingCommand({ thingName: "principal-thing" }));
    await h.iot.send(
      new AttachThingPrincipalCommand({ thingName: "principal-thing", principal: record.certificateArn }),
    );
    expect(h.endpoint.iot.policiesForPrincipal(record.certificateArn)).toEqual([doc]);
    expect(h.endpoint.iot.thingsForPrincipal(record.certificateArn)).toEqual(["principal-thing"]);
  });
});
