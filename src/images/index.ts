// The image layer's public face: the local images a server's container runs from (base runtime, per-package app
// images, ready images named in a spec). Other domains import only from here.
export { createImageBuilder, npmEnvironment } from './image-builder.js';
export type { ImageBuilder, ImageBuilderDeps, ImageProgress, RecordedImage, ServerImage } from './image-builder.js';
export { ImageError } from './image-error.js';
export { LAUNCHER_PATH } from './launcher.js';
export type { LaunchConfig } from './launcher.js';
