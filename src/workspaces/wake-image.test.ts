// The image a server wakes with: the container's record first, the gateway's memory when the container is gone.
import { describe, expect, it } from 'vitest';
import type { ServerImage } from '../images/index.js';
import { wakeImage } from './wake-image.js';

const ID = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const known: ServerImage = { image: 'mcpx-app:0123456789abcdef', id: ID, entrypoint: ['/usr/local/bin/node', '/app/x.js'], cached: false, packageVersion: 'x@1.0.0' };

describe('wakeImage', () => {
  it('uses what this process knows when the container was made from exactly that image', () => {
    expect(wakeImage({ image: known.image, id: ID }, known)).toEqual({ from: 'known', image: known });
  });

  it("looks up the container's own record when it differs from memory or there is no memory (after a restart)", () => {
    expect(wakeImage({ image: known.image, id: OTHER }, known)).toEqual({ from: 'recorded', recorded: { image: known.image, id: OTHER } });
    expect(wakeImage({ image: 'example/server:1.2', id: ID }, known)).toEqual({ from: 'recorded', recorded: { image: 'example/server:1.2', id: ID } });
    expect(wakeImage({ image: known.image, id: ID }, undefined)).toEqual({ from: 'recorded', recorded: { image: known.image, id: ID } });
  });

  it('falls back to memory when the container is gone, and to nothing when neither exists', () => {
    expect(wakeImage(undefined, known)).toEqual({ from: 'recorded', recorded: { image: known.image, id: ID } });
    expect(wakeImage(undefined, undefined)).toEqual({ from: 'none' });
  });
});
