/**
 * AWS IoT error codes as the restJson1 protocol carries them: the code goes in the
 * `x-amzn-ErrorType` header, the HTTP status is the one modelled for the error shape.
 */
export const IOT_ERROR_STATUS = {
  InvalidRequestException: 400,
  ThrottlingException: 400,
  CertificateValidationException: 400,
  MalformedPolicyException: 400,
  UnauthorizedException: 401,
  ResourceNotFoundException: 404,
  CertificateStateException: 406,
  ResourceAlreadyExistsException: 409,
  DeleteConflictException: 409,
  VersionConflictException: 409,
  VersionsLimitExceededException: 409,
  LimitExceededException: 410,
  InternalFailureException: 500,
  ServiceUnavailableException: 503,
  /** Not an AWS IoT shape: used for routes the emulator does not implement. */
  UnknownOperationException: 404,
} as const;

export type IotErrorCode = keyof typeof IOT_ERROR_STATUS;

/** An error an IoT operation answers with; the HTTP layer serialises it. */
export class IotError extends Error {
  readonly code: IotErrorCode;
  readonly status: number;
  /** Extra members of the error body (e.g. resourceId / resourceArn). */
  readonly fields: Record<string, string>;

  constructor(code: IotErrorCode, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = code;
    this.code = code;
    this.status = IOT_ERROR_STATUS[code];
    this.fields = fields;
  }
}

export const invalid = (message: string): IotError => new IotError("InvalidRequestException", message);
export const notFound = (message: string): IotError => new IotError("ResourceNotFoundException", message);
export const alreadyExists = (message: string, resourceId: string, resourceArn: string): IotError =>
  new IotError("ResourceAlreadyExistsException", message, { resourceId, resourceArn });
export const deleteConflict = (message: string): IotError => new IotError("DeleteConflictException", message);
export const certificateState = (message: string): IotError =>
  new IotError("CertificateStateException", message);
export const certificateValidation = (message: string): IotError =>
  new IotError("CertificateValidationException", message);
export const malformedPolicy = (message: string): IotError =>
  new IotError("MalformedPolicyException", message);
export const throttled = (message = "Rate exceeded"): IotError =>
  new IotError("ThrottlingException", message);
