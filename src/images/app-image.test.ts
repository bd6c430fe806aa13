// The application image's Dockerfile: base, read-only app layer, labels, unprivileged user and exec-form entrypoint.
import { describe, expect, it } from 'vitest';
import { renderDockerfile } from './app-image.js';

describe('renderDockerfile', () => {
  it('builds FROM the base, as user 10001, with an exec-form entrypoint and the managed labels', () => {
    const text = renderDockerfile({
      tag: 'mcpx-app:0123456789abcdef',
      baseRef: 'mcpx-base:fedcba9876543210',
      key: 'k'.repeat(64),
      packageLabel: '@s/p@1.0.0',
      entrypoint: ['/usr/local/bin/node', '/app/node_modules/@s/p/dist/index.js'],
    });
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('FROM mcpx-base:fedcba9876543210');
    expect(lines).toContain('COPY app /app');
    expect(lines).toContain('USER 10001:10001');
    expect(lines.at(-1)).toBe('ENTRYPOINT ["/usr/local/bin/node","/app/node_modules/@s/p/dist/index.js"]');
    const label = lines.find((l) => l.startsWith('LABEL ')) ?? '';
    expect(label).toContain('mcpx.managed="true"');
    expect(label).toContain('mcpx.image="app"');
    expect(label).toContain('mcpx.package="@s/p@1.0.0"');
    expect(label).not.toContain('mcpx.workspace');
  });
});
