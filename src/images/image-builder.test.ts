// The environment npm receives: what it needs to work, none of the gateway's own secrets.
import { describe, expect, it } from 'vitest';
import { npmEnvironment } from './image-builder.js';

describe('npmEnvironment', () => {
  it('keeps PATH, HOME, proxies and npm settings and drops everything else', () => {
    const env = npmEnvironment({
      PATH: '/usr/bin',
      HOME: '/root',
      https_proxy: 'http://proxy:3128',
      npm_config_registry: 'https://registry.example/',
      MCPX_MASTER_KEY_FILE: '/secret/key',
      MCPX_TOKEN: 'eyJ...',
      API_TOKEN: 'x',
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/root',
      https_proxy: 'http://proxy:3128',
      npm_config_registry: 'https://registry.example/',
      npm_config_update_notifier: 'false',
    });
  });
});
