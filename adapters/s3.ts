import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { JitrError, TransientError } from "../domain/errors.ts";
import type { JobFiles, SignedUrl, UploadedPart } from "../domain/jobs/ports.ts";
import { errorDetail, errorName, httpStatusOf, isTransientAwsError } from "./aws-errors.ts";

const TRANSIENT = new Set(["SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"]);

/** An S3 error as the domain's: TransientError when trying again may help, else JitrError. */
function mapS3Error(error: unknown, operation: string, key: string): JitrError {
  const message = `S3 ${operation} on ${key} failed: ${errorDetail(error)}`;
  return isTransientAwsError(error, TRANSIENT)
    ? new TransientError(message, { cause: error })
    : new JitrError(message, { cause: error });
}

/** The job bucket over S3: presigned upload and download URLs, ranged reads, multipart writes. */
export class S3JobFiles implements JobFiles {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly clock: { now(): Date } = { now: () => new Date() },
  ) {}

  /** A presigned PUT of exactly `bytes` bytes (the length is signed: S3 refuses any other). */
  async uploadUrl(key: string, bytes: number, expiresSeconds: number): Promise<SignedUrl> {
    const command = new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentLength: bytes });
    const url = await this.#sign("PutObject", key, () =>
      getSignedUrl(this.s3, command, {
        expiresIn: expiresSeconds,
        signableHeaders: new Set(["content-length"]),
      }),
    );
    return {
      url,
      method: "PUT",
      headers: { "content-length": String(bytes) },
      expiresAt: this.#at(expiresSeconds),
    };
  }

  /** A presigned GET. */
  async downloadUrl(key: string, expiresSeconds: number): Promise<SignedUrl> {
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: key });
    const url = await this.#sign("GetObject", key, () =>
      getSignedUrl(this.s3, command, { expiresIn: expiresSeconds }),
    );
    return { url, method: "GET", headers: {}, expiresAt: this.#at(expiresSeconds) };
  }

  /** The object's size, or undefined when there is none. */
  async size(key: string): Promise<number | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (errorName(error) === "NotFound" || httpStatusOf(error) === 404) return undefined;
      throw mapS3Error(error, "HeadObject", key);
    }
  }

  /** The object's bytes from `fromByte` on (none when it starts at or past the end). */
  async read(key: string, fromByte: number): Promise<AsyncIterable<Uint8Array>> {
    try {
      const output = await this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(fromByte > 0 ? { Range: `bytes=${fromByte}-` } : {}),
        }),
      );
      const body = output.Body as AsyncIterable<Uint8Array> | undefined;
      return body ?? (async function* () {})();
    } catch (error) {
      if (errorName(error) === "InvalidRange" || httpStatusOf(error) === 416)
        return (async function* () {})();
      throw mapS3Error(error, "GetObject", key);
    }
  }

  /** Starts a multipart upload. */
  async startUpload(key: string): Promise<string> {
    const output = await this.#send("CreateMultipartUpload", key, () =>
      this.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          ContentType: "application/x-ndjson",
        }),
      ),
    );
    if (output.UploadId === undefined)
      throw new JitrError(`S3 CreateMultipartUpload on ${key} gave no upload id`);
    return output.UploadId;
  }

  /** Uploads one part; answers its ETag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    const output = await this.#send("UploadPart", key, () =>
      this.s3.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
        }),
      ),
    );
    if (output.ETag === undefined) throw new JitrError(`S3 UploadPart on ${key} gave no ETag`);
    return output.ETag;
  }

  /** Completes a multipart upload from its parts. */
  async completeUpload(key: string, uploadId: string, parts: UploadedPart[]): Promise<void> {
    await this.#send("CompleteMultipartUpload", key, () =>
      this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
        }),
      ),
    );
  }

  #at(seconds: number): string {
    return new Date(this.clock.now().getTime() + seconds * 1000).toISOString();
  }

  async #send<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw mapS3Error(error, operation, key);
    }
  }

  #sign(operation: string, key: string, run: () => Promise<string>): Promise<string> {
    return this.#send(`presign ${operation}`, key, run);
  }
}
