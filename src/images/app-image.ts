// Builds a server's application image FROM the base image with the Engine's classic builder (it works offline):
// the installed node_modules become a root-owned, read-only /app layer and the entry script the ENTRYPOINT.
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { consumeEngineStream } from './docker-stream.js';
import { LABEL_IMAGE, LABEL_KEY, LABEL_MANAGED, LABEL_PACKAGE, SERVER_GID, SERVER_UID } from './image-constants.js';
import { ImageError } from './image-error.js';
import { tarStream, type TarEntry } from './tar-writer.js';

export interface AppImageSpec {
  tag: string;
  baseRef: string;
  key: string;
  /** name@version */
  packageLabel: string;
  entrypoint: string[];
}

export function renderDockerfile(spec: AppImageSpec): string {
  const q = (v: string) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return [
    `FROM ${spec.baseRef}`,
    // COPY without --chown gives root:root; the modes were normalised in the context, so the server's user can
    // read and execute the app but not change it.
    'COPY app /app',
    `LABEL ${LABEL_MANAGED}="true" ${LABEL_IMAGE}="app" ${LABEL_PACKAGE}=${q(spec.packageLabel)} ${LABEL_KEY}=${q(spec.key)}`,
    `USER ${SERVER_UID}:${SERVER_GID}`,
    'WORKDIR /workspace',
    `ENTRYPOINT ${JSON.stringify(spec.entrypoint)}`,
    '',
  ].join('\n');
}

/** The build context: the Dockerfile and `<stagingDir>/node_modules` as `app/node_modules`. */
async function* contextEntries(dockerfile: string, stagingDir: string): AsyncGenerator<TarEntry> {
  yield { type: 'file', path: 'Dockerfile', mode: 0o644, source: Buffer.from(dockerfile) };
  yield { type: 'directory', path: 'app', mode: 0o755 };
  yield* walk(join(stagingDir, 'node_modules'), 'app/node_modules');
}

/**
 * Symlinks are kept as links and never followed, so a package cannot pull host files into the image; every file
 * becomes root-owned and 0644/0755, whatever mode it had on the host.
 */
async function* walk(abs: string, rel: string): AsyncGenerator<TarEntry> {
  yield { type: 'directory', path: rel, mode: 0o755 };
  const names = (await readdir(abs)).sort();
  for (const name of names) {
    const a = join(abs, name);
    const r = `${rel}/${name}`;
    const st = await lstat(a);
    if (st.isDirectory()) yield* walk(a, r);
    else if (st.isSymbolicLink()) yield { type: 'symlink', path: r, target: await readlink(a) };
    else if (st.isFile()) {
      yield { type: 'file', path: r, mode: (st.mode & 0o111) !== 0 ? 0o755 : 0o644, source: { hostPath: a, size: st.size } };
    }
  }
}

export async function buildAppImage(
  docker: Docker,
  spec: AppImageSpec,
  stagingDir: string,
  onProgress: (message: string) => void,
): Promise<void> {
  const context = Readable.from(tarStream(contextEntries(renderDockerfile(spec), stagingDir)));
  const stream = await docker.buildImage(context, {
    t: spec.tag,
    // The classic builder: BuildKit would want a session and frontend images that cannot be pulled here.
    version: '1',
    rm: true,
    forcerm: true,
    networkmode: 'none',
  });
  try {
    await consumeEngineStream(stream, (m) => {
      const line = m.stream?.trim();
      if (line && /^Step \d+\/\d+ :/.test(line)) onProgress(line);
    });
  } catch (err) {
    throw new ImageError(`building image ${spec.tag} for ${spec.packageLabel} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
