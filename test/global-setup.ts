// Integration suites need a Docker Engine; leftovers of an earlier interrupted run are removed before and after.
import { docker, removeTestResources } from './helpers/docker.js';

export async function setup(): Promise<void> {
  try {
    await docker.ping();
  } catch {
    throw new Error('integration tests need a Docker Engine: run `bash scripts/setup.sh` first');
  }
  await removeTestResources();
}

export async function teardown(): Promise<void> {
  await removeTestResources();
}
