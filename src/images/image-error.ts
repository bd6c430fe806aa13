// The expected failures of the image layer (a package npm cannot install, an image that is not available):
// their messages are written for the user who wrote the spec.

export class ImageError extends Error {
  override readonly name = 'ImageError';
}
