// The image builder: decides, for a server spec, which local image its container runs from, building the base
// runtime and content-addressed application images when they are missing, and sharing concurrent builds.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type pino from 'pino';
import type { ServerSpec } from '../config/spec.js';
import { buildAppImage } from './app-image.js';
import { importBaseImage, planBaseImage, type BasePlan } from './base-image.js';
import { consumeEngineStream, engineErrorMessage, isNotFound } from './docker-stream.js';
import {
  APP_DIR_IN_IMAGE,
  APP_REPO,
  BUILDER_VERSION,
  LABEL_IMAGE,
  LABEL_KEY,
  LABEL_MANAGED,
  LABEL_PACKAGE,
  NODE_PATH_IN_IMAGE,
} from './image-constants.js';
import { ImageError } from './image-error.js';
import { installPackage } from './package-installer.js';
import { createPackageResolver } from './package-resolver.js';

/** Human-readable one-line progress messages. */
export interface ImageProgress {
  (message: string): void;
}

export interface ServerImage {
  /** The image reference to create the container from (a tag, e.g. "mcpx-app:3f2a..."). */
  image: string;
  /** The command to run in the container; for an `image` server `spec.command`, else [] (the image's own). */
  entrypoint: string[];
  /** True when nothing was built (or pulled): the image was already present. */
  cached: boolean;
  /** The resolved name@version of a `package` server. */
  packageVersion?: string;
  /** The engine's image id (sha256:...): what a container made from `image` runs, whatever the tag names later. */
  id: string;
}

/** An image a container was made from: the reference it was created with and the image id that reference named then. */
export interface RecordedImage {
  image: string;
  id: string;
}

export interface ImageBuilder {
  /** Returns the base image reference, importing the image first if it is missing. */
  ensureBaseImage(onProgress?: ImageProgress): Promise<string>;
  ensureServerImage(server: ServerSpec, onProgress?: ImageProgress): Promise<ServerImage>;
  /**
   * The image a server already has (a wake-up reuses it): local look-ups only, no registry access, nothing built or
   * pulled. The recorded reference while it still names the recorded id, else the id itself; undefined when that
   * image is gone, or is not what this server could run (a `package` server runs only this builder's app images).
   */
  recordedImage(server: ServerSpec, recorded: RecordedImage): Promise<ServerImage | undefined>;
}

export interface ImageBuilderDeps {
  docker: Docker;
  /** Where staging folders for npm installs live (cacheDir/staging/...). */
  cacheDir: string;
  logger: Pick<pino.Logger, 'info' | 'warn' | 'debug'>;
  /** How long an npm registry answer (spec -> name@version) is reused; default 10 minutes. */
  resolveTtlMs?: number;
  /** The environment npm runs with: build it with npmEnvironment() so that none of the gateway's secrets reach npm. */
  npmEnv: NodeJS.ProcessEnv;
}

const INSTALL_TIMEOUT_MS = 5 * 60_000;
const PULL_TIMEOUT_MS = 5 * 60_000;
// Staging folders older than this were left by a process that died mid-install (installs time out long before).
const STALE_STAGING_MS = 60 * 60_000;

/*
 * Images carry mcpx.managed=true and mcpx.image=base|app but deliberately no mcpx.workspace label: they are a
 * content-addressed cache shared by every workspace that runs the same package, so deleting a workspace must not
 * remove them (and the rule "nothing labelled mcpx.workspace=<name> remains" does not apply to them).
 */
export function createImageBuilder(deps: ImageBuilderDeps): ImageBuilder {
  const { docker, logger } = deps;
  const npmEnv = deps.npmEnv;
  const resolver = createPackageResolver({ npmEnv, ttlMs: deps.resolveTtlMs ?? 10 * 60_000 });
  const shared = sharedWork();

  let planPromise: Promise<BasePlan> | undefined;
  // The base reference once it is known to exist; an app build still re-checks it, as it may have been removed since.
  let confirmedBase: string | undefined;
  let stagingSwept = false;

  async function sweepStaging(): Promise<void> {
    if (stagingSwept) return;
    stagingSwept = true;
    const root = join(deps.cacheDir, 'staging');
    for (const name of await readdir(root).catch(() => [])) {
      const p = join(root, name);
      const st = await stat(p).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_STAGING_MS) {
        await rm(p, { recursive: true, force: true }).catch(() => undefined);
        logger.debug({ stagingDir: p }, 'removed a stale staging folder');
      }
    }
  }

  function basePlan(): Promise<BasePlan> {
    if (!planPromise) {
      const p = planBaseImage(process.execPath);
      planPromise = p;
      p.catch(() => {
        if (planPromise === p) planPromise = undefined;
      });
    }
    return planPromise;
  }

  async function inspectImage(ref: string): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await docker.getImage(ref).inspect();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function managedImage(ref: string, kind: 'base' | 'app', key: string): Promise<Docker.ImageInspectInfo | undefined> {
    const info = await inspectImage(ref);
    if (!info) return undefined;
    const labels = info.Config.Labels ?? {};
    // A tag that exists but was not made by this builder for this key is rebuilt (the tag is then moved).
    if (labels[LABEL_MANAGED] !== 'true' || labels[LABEL_IMAGE] !== kind || labels[LABEL_KEY] !== key) {
      logger.warn({ image: ref }, 'image tag exists but is not the expected mcpx image; rebuilding it');
      return undefined;
    }
    return info;
  }

  async function ensureBase(onProgress: ImageProgress | undefined, recheck: boolean): Promise<string> {
    if (confirmedBase !== undefined && !recheck) return confirmedBase;
    const ref = await shared('base', onProgress, async (emit) => {
      const plan = await basePlan();
      if (await managedImage(plan.ref, 'base', plan.hash)) return plan.ref;
      emit(`building base image ${plan.ref}`);
      const started = Date.now();
      await importBaseImage(docker, plan, emit);
      if (!(await managedImage(plan.ref, 'base', plan.hash))) {
        throw new Error(`the Engine accepted the base image import but ${plan.ref} is not present`);
      }
      logger.info({ image: plan.ref, ms: Date.now() - started }, 'base image built');
      return plan.ref;
    });
    confirmedBase = ref;
    return ref;
  }

  async function ensurePackageImage(server: ServerSpec, spec: string, onProgress: ImageProgress | undefined): Promise<ServerImage> {
    const resolved = await resolver.resolve(spec);
    const plan = await basePlan();
    const key = createHash('sha256').update(`${BUILDER_VERSION}\n${plan.ref}\n${resolved.identity}`).digest('hex');
    const tag = `${APP_REPO}:${key.slice(0, 16)}`;

    const existing = await managedImage(tag, 'app', key);
    if (existing) return fromInspect(tag, existing, true);

    return shared(`app:${key}`, onProgress, async (emit) => {
      // Another caller's build may have finished between the look-up above and this job starting.
      const justBuilt = await managedImage(tag, 'app', key);
      if (justBuilt) return fromInspect(tag, justBuilt, true);
      const baseRef = await ensureBase(emit, true);
      await sweepStaging();
      const display = resolved.nameVersion ?? spec;
      const stagingDir = join(deps.cacheDir, 'staging', `${key.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
      const started = Date.now();
      try {
        const installed = await installPackage({
          stagingDir,
          installSpec: resolved.installSpec,
          display,
          npmEnv,
          timeoutMs: INSTALL_TIMEOUT_MS,
          onProgress: emit,
        });
        const packageVersion = `${installed.name}@${installed.version}`;
        const entrypoint = [NODE_PATH_IN_IMAGE, `${APP_DIR_IN_IMAGE}/node_modules/${installed.dirName}/${installed.entry}`];
        emit(`building image ${tag}`);
        await buildAppImage(docker, { tag, baseRef, key, packageLabel: packageVersion, entrypoint }, stagingDir, emit);
        const built = await managedImage(tag, 'app', key);
        if (!built) throw new Error(`the build of ${tag} finished but the image is not present`);
        logger.info({ server: server.name, image: tag, package: packageVersion, ms: Date.now() - started }, 'app image built');
        return { image: tag, entrypoint, cached: false, packageVersion, id: built.Id };
      } finally {
        await rm(stagingDir, { recursive: true, force: true }).catch((err: unknown) => {
          logger.warn({ err, stagingDir }, 'could not remove a staging folder');
        });
      }
    });
  }

  async function recordedImage(server: ServerSpec, recorded: RecordedImage): Promise<ServerImage | undefined> {
    const byId = await inspectImage(recorded.id);
    if (!byId) return undefined;
    const tagged = recorded.image === recorded.id ? byId : await inspectImage(recorded.image);
    // A tag moved since (a re-pull, a rebuild under the same name) would mean other content: keep to the id.
    const ref = tagged?.Id === byId.Id ? recorded.image : byId.Id;
    if (server.image !== undefined) {
      // Only the image this spec names (or the id it named when the container was made).
      if (recorded.image !== server.image && recorded.image !== recorded.id) return undefined;
      return { image: ref, entrypoint: server.command ?? [], cached: true, id: byId.Id };
    }
    const labels = byId.Config.Labels ?? {};
    if (labels[LABEL_MANAGED] !== 'true' || labels[LABEL_IMAGE] !== 'app') return undefined;
    return fromInspect(ref, byId, true);
  }

  async function ensureRegistryImage(server: ServerSpec, ref: string, onProgress: ImageProgress | undefined): Promise<ServerImage> {
    const entrypoint = server.command ?? [];
    const present = await inspectImage(ref);
    if (present) return { image: ref, entrypoint, cached: true, id: present.Id };
    onProgress?.(`pulling ${ref}`);
    let pulled: Docker.ImageInspectInfo;
    try {
      const stream = await docker.pull(ref, { abortSignal: AbortSignal.timeout(PULL_TIMEOUT_MS) });
      await consumeEngineStream(stream, (m) => {
        if (m.status !== undefined && m.progress === undefined) onProgress?.(`pull: ${m.status}`);
      });
      pulled = await docker.getImage(ref).inspect();
    } catch (err) {
      throw new ImageError(`image ${ref} is not present locally and could not be pulled: ${engineErrorMessage(err)}`);
    }
    logger.info({ server: server.name, image: ref }, 'image pulled');
    return { image: ref, entrypoint, cached: false, id: pulled.Id };
  }

  return {
    ensureBaseImage: (onProgress) => ensureBase(onProgress, false),
    ensureServerImage(server, onProgress) {
      if (server.image !== undefined) return ensureRegistryImage(server, server.image, onProgress);
      if (server.package !== undefined) return ensurePackageImage(server, server.package, onProgress);
      return Promise.reject(new ImageError(`server "${server.name}" names neither a package nor an image`));
    },
    recordedImage,
  };
}

function fromInspect(tag: string, info: Docker.ImageInspectInfo, cached: boolean): ServerImage {
  const ep: unknown = info.Config.Entrypoint;
  const entrypoint = Array.isArray(ep) ? ep.filter((s): s is string => typeof s === 'string') : typeof ep === 'string' ? [ep] : [];
  const packageVersion = info.Config.Labels?.[LABEL_PACKAGE];
  return packageVersion !== undefined ? { image: tag, entrypoint, cached, packageVersion, id: info.Id } : { image: tag, entrypoint, cached, id: info.Id };
}

/**
 * What npm needs from the gateway's environment and nothing else: the gateway's own secrets (tokens, key paths)
 * must not reach a third-party toolchain.
 */
export function npmEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const keep = /^(PATH|HOME|USER|LANG|LC_ALL|TMPDIR|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|npm_config_\w+|NPM_CONFIG_\w+)$/;
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && keep.test(k)) out[k] = v;
  out.npm_config_update_notifier = 'false';
  return out;
}

/**
 * Runs one job per key at a time: callers arriving while it runs share its promise and receive its progress
 * messages too.
 */
function sharedWork() {
  const inflight = new Map<string, { listeners: Set<ImageProgress>; promise: Promise<unknown> }>();
  return function run<T>(key: string, onProgress: ImageProgress | undefined, work: (emit: ImageProgress) => Promise<T>): Promise<T> {
    const running = inflight.get(key);
    if (running) {
      if (onProgress) running.listeners.add(onProgress);
      return running.promise as Promise<T>;
    }
    const listeners = new Set<ImageProgress>(onProgress ? [onProgress] : []);
    const emit: ImageProgress = (message) => {
      for (const l of listeners) {
        try {
          l(message);
        } catch {
          // a listener's failure must not fail the build other callers wait for
        }
      }
    };
    const promise = work(emit).finally(() => inflight.delete(key));
    inflight.set(key, { listeners, promise });
    return promise;
  };
}
