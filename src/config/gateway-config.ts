// The gateway's own configuration: one strict schema, parsed once from flags and environment, passed down.
import { z } from 'zod';

export const gatewayConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1').describe('Address to listen on (MCPX_HOST)'),
  port: z.coerce.number().int().min(0).max(65_535).default(7470).describe('Port to listen on (MCPX_PORT); 0 picks a free one'),
  dataDir: z.string().min(1).default('.mcpx').describe('Data directory: database, signing key, master key (MCPX_DATA_DIR)'),
  publicUrl: z.url().optional().describe('The URL clients use to reach the gateway, when it differs from the listen address (MCPX_PUBLIC_URL)'),
  jwksUrl: z.url().optional().describe('An external identity provider\'s JWKS (MCPX_JWKS_URL)'),
  jwtIssuer: z.string().min(1).optional().describe('Issuer required of external tokens (MCPX_JWT_ISSUER)'),
  jwtAudience: z.string().min(1).optional().describe('Audience required of external tokens (MCPX_JWT_AUDIENCE)'),
  masterKeyFile: z.string().min(1).optional().describe('File holding the secrets master key (MCPX_MASTER_KEY_FILE)'),
  maxBodyBytes: z.coerce.number().int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024).describe('Largest request body accepted (MCPX_MAX_BODY_BYTES)'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (MCPX_LOG_LEVEL)'),
  allowedOrigins: z
    .string()
    .optional()
    .describe('Comma-separated browser origins allowed on the MCP endpoint, besides the gateway\'s own (MCPX_ALLOWED_ORIGINS)'),
  egressProxyPort: z.coerce
    .number()
    .int()
    .min(1)
    .max(65_535)
    .default(3128)
    .describe("Port of each workspace's egress proxy, on that workspace network's gateway address (MCPX_EGRESS_PROXY_PORT)"),
  imageCacheTtlMs: z.coerce.number().int().min(0).default(600_000).describe('How long a resolved npm version is trusted (MCPX_IMAGE_RESOLVE_TTL_MS)'),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

const ENV_KEYS: Record<string, keyof GatewayConfig> = {
  MCPX_HOST: 'host',
  MCPX_PORT: 'port',
  MCPX_DATA_DIR: 'dataDir',
  MCPX_PUBLIC_URL: 'publicUrl',
  MCPX_JWKS_URL: 'jwksUrl',
  MCPX_JWT_ISSUER: 'jwtIssuer',
  MCPX_JWT_AUDIENCE: 'jwtAudience',
  MCPX_MASTER_KEY_FILE: 'masterKeyFile',
  MCPX_MAX_BODY_BYTES: 'maxBodyBytes',
  MCPX_LOG_LEVEL: 'logLevel',
  MCPX_IMAGE_RESOLVE_TTL_MS: 'imageCacheTtlMs',
  MCPX_ALLOWED_ORIGINS: 'allowedOrigins',
  MCPX_EGRESS_PROXY_PORT: 'egressProxyPort',
};

export type ConfigResult = { ok: true; config: GatewayConfig } | { ok: false, errors: string[] };

/** Flags win over environment variables, which win over the embedded defaults. */
export function loadGatewayConfig(flags: Partial<Record<keyof GatewayConfig, unknown>>, env: Record<string, string | undefined>): ConfigResult {
  const input: Record<string, unknown> = {};
  for (const [envKey, key] of Object.entries(ENV_KEYS)) {
    const v = env[envKey];
    if (v !== undefined && v !== '') input[key] = v;
  }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) input[k] = v;
  const r = gatewayConfigSchema.safeParse(input);
  if (r.success) {
    if (r.data.jwksUrl && (!r.data.jwtIssuer || !r.data.jwtAudience)) {
      return { ok: false, errors: ['MCPX_JWKS_URL needs MCPX_JWT_ISSUER and MCPX_JWT_AUDIENCE'] };
    }
    return { ok: true, config: r.data };
  }
  return { ok: false, errors: r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`) };
}
