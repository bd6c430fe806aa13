// Which image a server wakes with: pure. A wake-up runs what the server ran before it slept, never a new resolution.
import type { RecordedImage, ServerImage } from '../images/index.js';

export type WakeImage =
  /** This process made or woke the container from this image: nothing to look up. */
  | { from: 'known'; image: ServerImage }
  /** Ask the engine (local look-ups only) for the image recorded here. */
  | { from: 'recorded'; recorded: RecordedImage }
  /** No record at all (the container is gone and this process never ran it): converge like a create. */
  | { from: 'none' };

/**
 * `container`: the stopped container's reference and image id (undefined when it is gone); `known`: the image this
 * process last ran the server from. The container is the record when it exists (after a restart it is the only one);
 * the process's memory serves when it was removed behind the gateway's back.
 */
export function wakeImage(container: RecordedImage | undefined, known: ServerImage | undefined): WakeImage {
  if (container) {
    if (known && known.image === container.image && known.id === container.id) return { from: 'known', image: known };
    return { from: 'recorded', recorded: container };
  }
  return known ? { from: 'recorded', recorded: { image: known.image, id: known.id } } : { from: 'none' };
}
