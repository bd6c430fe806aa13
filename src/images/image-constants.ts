// Names and numbers every image the gateway makes shares: labels, the unprivileged user, the builder version.

/**
 * Part of every content key: bump it when the layout of an image changes, so images made by an older builder
 * are not mistaken for current ones.
 */
export const BUILDER_VERSION = 'mcpx-images/1';

export const BASE_REPO = 'mcpx-base';
export const APP_REPO = 'mcpx-app';

/** The unprivileged user every server runs as. */
export const SERVER_UID = 10001;
export const SERVER_GID = 10001;

export const NODE_PATH_IN_IMAGE = '/usr/local/bin/node';
export const APP_DIR_IN_IMAGE = '/app';

export const LABEL_MANAGED = 'mcpx.managed';
export const LABEL_IMAGE = 'mcpx.image';
export const LABEL_PACKAGE = 'mcpx.package';
export const LABEL_KEY = 'mcpx.key';
