// The few error classes that carry an expected failure to the edge, where ingress maps them to HTTP once.
export type ErrorKind = 'invalid' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'too_large' | 'unavailable';

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly errors?: string[],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const invalid = (message: string, errors?: string[]) => new AppError('invalid', message, errors);
export const conflict = (message: string) => new AppError('conflict', message);
