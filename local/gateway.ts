/**
 * The local device gateway: MQTT over TLS with client certificates on 127.0.0.1, with AWS IoT Core's
 * just-in-time registration semantics and IoT policy enforcement for connect, publish, subscribe and
 * receive, through the emulator's authorization (the same effective policies as its TestAuthorization).
 */
import { X509Certificate as NodeX509 } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { Aedes, type Client } from "aedes";
import { certificateIdOfDer } from "../pki/certificate-id.ts";
import type { CertificateVariables, IotRegistry } from "./aws/index.ts";

/** The certificate-registered event, as AWS IoT publishes it on `$aws/events/certificates/registered/<caId>`. */
export interface CertificateRegisteredEvent {
  certificateId: string;
  caCertificateId: string;
  timestamp: number;
  certificateStatus: "PENDING_ACTIVATION";
  awsAccountId: string;
  certificateRegistrationTimestamp: string;
}

export interface GatewayOptions {
  host?: string;
  port?: number;
  registry: IotRegistry;
  region: string;
  accountId: string;
  /** The gateway's TLS server certificate and key (PEM). */
  serverCertificatePem: string;
  serverKeyPem: string;
  /** Receives every registered event (the rule path). */
  onRegistered: (topic: string, event: CertificateRegisteredEvent) => void;
  /** Connection-level happenings, for logs and tests. */
  onConnectionEvent?: (event: GatewayConnectionEvent) => void;
}

export type GatewayConnectionEvent =
  | { kind: "refused"; certificateId?: string; reason: string }
  | { kind: "registered"; certificateId: string; caCertificateId: string }
  | { kind: "pending"; certificateId: string }
  | { kind: "accepted"; certificateId: string }
  | { kind: "not-authorized"; certificateId: string; action: string; resource: string }
  | { kind: "disconnected"; certificateId: string; reason: string };

export interface DeviceGateway {
  port: number;
  url: string;
  /** Live MQTT connections by certificate id. */
  connectionsFor(certificateId: string): number;
  close(): Promise<void>;
}

/** Starts the gateway; resolves once it listens. */
export async function startDeviceGateway(options: GatewayOptions): Promise<DeviceGateway> {
  const { registry, region, accountId } = options;
  const arn = (kind: string, name: string) => `arn:aws:iot:${region}:${accountId}:${kind}/${name}`;
  /** The certificate each admitted socket authenticated with, as its policies see it. */
  const certificates = new WeakMap<object, CertificateVariables>();
  const live = new Map<string, Set<Client>>();
  const report = (event: GatewayConnectionEvent) => options.onConnectionEvent?.(event);

  /** Whether the connection's effective policies allow the action, evaluated as AWS IoT does. */
  const allows = (client: Client, action: string, resource: string): boolean => {
    const certificate = certificates.get(client.conn);
    if (!certificate) return false;
    const current = registry.describeCertificateById(certificate.certificateId);
    if (current?.status !== "ACTIVE") return false;
    const result = registry.authorize({ certificate, clientId: client.id }, action, resource);
    if (!result.allowed)
      report({ kind: "not-authorized", certificateId: certificate.certificateId, action, resource });
    return result.allowed;
  };

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      if (!allows(client, "iot:Connect", arn("client", client.id))) {
        const error = Object.assign(new Error("Not authorized"), { returnCode: 5 as const });
        done(error, false);
        return;
      }
      done(null, true);
    },
    // AWS IoT (MQTT 3.1.1) closes the connection of a client that publishes where it may not.
    authorizePublish(client, packet, callback) {
      if (client === null) return callback(null);
      if (packet.topic.startsWith("$aws/events/")) return callback(new Error("reserved topic"));
      callback(
        allows(client, "iot:Publish", arn("topic", packet.topic)) ? null : new Error("Not authorized"),
      );
    },
    // An unauthorized subscription gets the SUBACK failure code 0x80, as on AWS IoT.
    authorizeSubscribe(client, subscription, callback) {
      callback(
        null,
        allows(client, "iot:Subscribe", arn("topicfilter", subscription.topic)) ? subscription : null,
      );
    },
    authorizeForward(client, packet) {
      return allows(client, "iot:Receive", arn("topic", packet.topic)) ? packet : null;
    },
  });

  broker.on("clientReady", (client) => {
    const certificate = certificates.get(client.conn);
    if (!certificate) return;
    const set = live.get(certificate.certificateId) ?? new Set<Client>();
    set.add(client);
    live.set(certificate.certificateId, set);
  });
  broker.on("clientDisconnect", (client) => {
    const certificate = certificates.get(client.conn);
    if (certificate) live.get(certificate.certificateId)?.delete(client);
  });

  // A certificate that stops being ACTIVE loses its live connections, as on AWS IoT.
  const dropCertificate = (certificateId: string, reason: string) => {
    for (const client of live.get(certificateId) ?? []) {
      report({ kind: "disconnected", certificateId, reason });
      client.close();
    }
    live.delete(certificateId);
  };
  const onStatus = (certificateId: string, status: string) => {
    if (status !== "ACTIVE") dropCertificate(certificateId, `certificate is ${status}`);
  };
  const onDeleted = (certificateId: string) => dropCertificate(certificateId, "certificate deleted");
  registry.on("certificateStatusChanged", onStatus);
  registry.on("certificateDeleted", onDeleted);

  const publishRegistered = (certificateId: string, caCertificateId: string, registeredAt: number) => {
    const event: CertificateRegisteredEvent = {
      certificateId,
      caCertificateId,
      timestamp: Date.now(),
      certificateStatus: "PENDING_ACTIVATION",
      awsAccountId: accountId,
      certificateRegistrationTimestamp: String(registeredAt),
    };
    options.onRegistered(`$aws/events/certificates/registered/${caCertificateId}`, event);
  };

  const admit = async (socket: TLSSocket): Promise<void> => {
    const peer = socket.getPeerCertificate(true);
    if (!peer?.raw) {
      report({ kind: "refused", reason: "no client certificate" });
      socket.destroy();
      return;
    }
    const der = peer.raw;
    const certificateId = certificateIdOfDer(der);
    const cert = new NodeX509(der);
    const now = Date.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
      report({ kind: "refused", certificateId, reason: "certificate outside its validity" });
      socket.destroy();
      return;
    }
    const known = registry.describeCertificateById(certificateId);
    if (known === undefined) {
      // Just-in-time registration: the issuer must be a registered ACTIVE CA with auto-registration on.
      const ca = await registry.findCaForCertificate(new Uint8Array(der));
      if (ca?.status !== "ACTIVE" || ca.autoRegistrationStatus !== "ENABLE") {
        report({
          kind: "refused",
          certificateId,
          reason: ca ? "CA not ACTIVE with auto-registration" : "unknown CA",
        });
        socket.destroy();
        return;
      }
      try {
        await registry.autoRegisterCertificate(cert.toString(), ca.caCertificateId);
        report({ kind: "registered", certificateId, caCertificateId: ca.caCertificateId });
        publishRegistered(certificateId, ca.caCertificateId, Date.now());
      } catch (error) {
        report({
          kind: "refused",
          certificateId,
          reason: `auto-registration failed: ${(error as Error).message}`,
        });
      }
      socket.destroy();
      return;
    }
    if (known.status === "PENDING_ACTIVATION") {
      // Still pending: the connection is dropped and the event published again, as AWS IoT does.
      report({ kind: "pending", certificateId });
      if (known.caCertificateId)
        publishRegistered(certificateId, known.caCertificateId, known.creationDate * 1000);
      socket.destroy();
      return;
    }
    if (known.status !== "ACTIVE") {
      report({ kind: "refused", certificateId, reason: `certificate is ${known.status}` });
      socket.destroy();
      return;
    }
    // Stricter reading: a certificate whose registered CA has been deactivated may not connect.
    const ca = known.caCertificateId ? registry.describeCaCertificateById(known.caCertificateId) : undefined;
    if (known.caCertificateId && ca?.status !== "ACTIVE") {
      report({ kind: "refused", certificateId, reason: "the certificate's CA is not ACTIVE" });
      socket.destroy();
      return;
    }
    const variables = registry.certificateVariables(der);
    if (!variables) {
      report({ kind: "refused", certificateId, reason: "certificate does not parse" });
      socket.destroy();
      return;
    }
    certificates.set(socket, variables);
    report({ kind: "accepted", certificateId });
    broker.handle(socket);
  };

  const server: Server = createServer(
    {
      cert: options.serverCertificatePem,
      key: options.serverKeyPem,
      requestCert: true,
      // Client chains are checked against the registered CAs in `admit`; TLS still proves key possession.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    },
    (socket) => {
      socket.on("error", () => socket.destroy());
      admit(socket).catch(() => socket.destroy());
    },
  );
  server.on("tlsClientError", () => undefined);
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8883, options.host ?? "127.0.0.1", () =>
      resolve(server.address() as AddressInfo),
    );
  });

  return {
    port: address.port,
    url: `mqtts://${options.host ?? "127.0.0.1"}:${address.port}`,
    connectionsFor: (certificateId) => live.get(certificateId)?.size ?? 0,
    close: async () => {
      registry.off("certificateStatusChanged", onStatus);
      registry.off("certificateDeleted", onDeleted);
      for (const set of live.values()) for (const client of set) client.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
      });
    },
  };
}
