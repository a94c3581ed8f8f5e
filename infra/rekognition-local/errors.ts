/**
 * Rekognition's errors as the AWS JSON 1.1 protocol carries them: the type in `__type` and in the
 * `x-amzn-ErrorType` header, with the HTTP status the real service documents for each, so the SDK
 * raises its own typed exception and retries exactly what it would retry against AWS.
 */
const HTTP_STATUS = {
  AccessDeniedException: 400,
  IdempotentParameterMismatchException: 400,
  ImageTooLargeException: 400,
  InternalServerError: 500,
  InvalidImageFormatException: 400,
  InvalidPaginationTokenException: 400,
  InvalidParameterException: 400,
  InvalidS3ObjectException: 400,
  LimitExceededException: 400,
  ProvisionedThroughputExceededException: 400,
  ResourceAlreadyExistsException: 400,
  ResourceInUseException: 400,
  ResourceNotFoundException: 400,
  SerializationException: 400,
  ServiceQuotaExceededException: 400,
  ThrottlingException: 500,
  UnknownOperationException: 400,
  ValidationException: 400,
  ConflictException: 400,
} as const;

export type ErrorType = keyof typeof HTTP_STATUS;

export class RekognitionError extends Error {
  readonly status: number;

  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
    this.name = type;
    this.status = HTTP_STATUS[type];
  }
}

export const notFound = (message: string) => new RekognitionError('ResourceNotFoundException', message);
export const invalidParameter = (message: string) => new RekognitionError('InvalidParameterException', message);
