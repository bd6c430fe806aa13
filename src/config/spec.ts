// The workspace spec: one strict zod schema (unknown keys are errors naming the key) and its parser.
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';

const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Environment names the gateway sets itself; a spec may not override them. */
export const RESERVED_ENV = ['WORKSPACE_ID', 'CONTAINER_ID', 'MCPX_API_ENDPOINT', 'PATH'] as const;

const dnsName = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(NAME_RE, 'must be lower-case letters, digits and "-", starting and ending with a letter or digit');

/** Byte sizes in Docker's notation: 512m, 1g, 100k or a plain number of bytes. */
export const byteSize = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const bytes = parseBytes(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a size (use a positive number with b, k, m or g)` });
      return z.NEVER;
    }
    return bytes;
  });

export function parseBytes(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg])?i?b?$/i.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit] ?? 1;
  const bytes = Math.floor(n * mult);
  return bytes > 0 ? bytes : undefined;
}

const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'is not a valid secret name');

const serverSchema = z
  .strictObject({
    name: dnsName(40).describe('Server name, unique in the workspace; containers are named mcpx-<workspace>-<server>'),
    package: z.string().min(1).max(512).optional().describe('An npm spec (name, name@range, file:/abs/dir); built into an image'),
    image: z.string().min(1).max(512).optional().describe('A ready image, used as it is when present locally or pullable'),
    command: z.array(z.string().max(4096)).max(64).optional().describe("Overrides the image's entrypoint"),
    args: z.array(z.string().max(4096)).max(256).default([]).describe('Arguments passed to the server'),
    env: z
      .record(z.string().regex(ENV_NAME_RE, 'is not a valid environment variable name'), z.string().max(32_768))
      .default({})
      .describe('Plain configuration passed as environment variables'),
    secrets: z
      .array(
        z.union([
          secretName.transform((name) => ({ name, mode: 'env' as const })),
          z.strictObject({
            name: secretName,
            mode: z.enum(['env', 'file']).default('env').describe('env: an environment variable; file: /run/secrets/NAME on a tmpfs'),
          }),
        ]),
      )
      .max(64)
      .default([])
      .describe('Workspace secrets this server receives: a name, or {name, mode}'),
  })
  .superRefine((s, ctx) => {
    if ((s.package === undefined) === (s.image === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['package'], message: 'exactly one of "package" or "image" is required' });
    }
    const names = new Set<string>();
    s.secrets.forEach((sec, i) => {
      if (names.has(sec.name)) ctx.addIssue({ code: 'custom', path: ['secrets', i], message: `secret "${sec.name}" is named twice` });
      names.add(sec.name);
      if (sec.mode === 'file' && s.package === undefined) {
        ctx.addIssue({ code: 'custom', path: ['secrets', i, 'mode'], message: 'file mode needs a "package" server (the gateway\'s launcher writes the files)' });
      }
      if (sec.mode === 'env' && (RESERVED_ENV as readonly string[]).includes(sec.name)) {
        ctx.addIssue({ code: 'custom', path: ['secrets', i], message: `"${sec.name}" is set by the gateway and cannot be a secret's variable` });
      }
      if (sec.mode === 'env' && sec.name in s.env) {
        ctx.addIssue({ code: 'custom', path: ['secrets', i], message: `"${sec.name}" is also in env` });
      }
    });
    if (s.package !== undefined && s.command !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: '"command" applies only to an "image" server' });
    }
    for (const key of Object.keys(s.env)) {
      if ((RESERVED_ENV as readonly string[]).includes(key)) {
        ctx.addIssue({ code: 'custom', path: ['env', key], message: `"${key}" is set by the gateway and cannot be overridden` });
      }
    }
  });

const resourcesSchema = z
  .strictObject({
    cpus: z.number().positive().max(64).default(0.5).describe('CPU limit in cores'),
    memory: byteSize.default(512 * 1024 ** 2).describe('Memory limit'),
    pids: z.number().int().min(8).max(32_768).default(64).describe('Process/thread limit'),
    nofile: z.number().int().min(64).max(1_048_576).default(1024).describe('Open file limit'),
    disk: byteSize.default(1024 ** 3).describe('Size of the /workspace volume'),
    tmp: byteSize.default(100 * 1024 ** 2).describe('Size of the /tmp tmpfs'),
  })
  .superRefine((r, ctx) => {
    if (r.memory < 16 * 1024 ** 2) ctx.addIssue({ code: 'custom', path: ['memory'], message: 'must be at least 16m' });
    // /workspace is an ext4 filesystem of this size: below 8m its journal and metadata leave too little room.
    if (r.disk < 8 * 1024 ** 2) ctx.addIssue({ code: 'custom', path: ['disk'], message: 'must be at least 8m' });
  });

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be "host:port"');

const networkSchema = z.union([
  z.literal('none'),
  z.strictObject({ egress: z.array(hostPort).min(1).max(256).describe('Destinations the servers may reach') }),
]);

const roleSchema = z.enum(['owner', 'member', 'viewer']);

const globs = z.array(z.string().min(1).max(256)).max(1000);
const rules = z.strictObject({ allow: globs.optional(), deny: globs.optional() });
const kindPolicy = z.strictObject({
  allow: globs.optional().describe('Only names matching one of these globs (default: all)'),
  deny: globs.optional().describe('Never names matching these globs (deny wins)'),
  roles: z.strictObject({ owner: rules.optional(), member: rules.optional(), viewer: rules.optional() }).optional().describe('Per-role overrides: deny adds, allow replaces'),
});
const bucket = z.strictObject({ rate: z.number().positive().max(1_000_000), burst: z.number().int().min(1).max(10_000_000) });

export const workspaceSpecSchema = z
  .strictObject({
    name: dnsName(40).describe('Workspace name: [a-z0-9-], 1..40 characters, unique'),
    servers: z.array(serverSchema).min(1).max(32).describe('The MCP servers of this workspace'),
    resources: resourcesSchema.default(resourcesSchema.parse({})).describe('Limits applied to each server container'),
    network: networkSchema.default('none').describe('none (default): loopback only; or an egress allowlist'),
    isolation: z.enum(['standard', 'gvisor']).default('standard').describe('Container runtime tier'),
    members: z.record(z.string().min(1).max(256), roleSchema).default({}).describe('Users and their roles'),
    redaction: z
      .strictObject({
        patterns: z
          .enum(['redact', 'block', 'off'])
          .default('redact')
          .describe('Credential-shaped text in responses: redact it, block the whole response, or leave it (secret values are always redacted)'),
      })
      .default({ patterns: 'redact' })
      .describe('Response redaction policy'),
    tools: kindPolicy.default({}).describe('Tool allow/deny globs over the names clients see (server__tool with several servers)'),
    prompts: kindPolicy.default({}).describe('Prompt allow/deny globs'),
    resourceUris: kindPolicy.default({}).describe('Resource allow/deny globs over URIs (resources: is the container limits)'),
    limits: z
      .strictObject({
        maxStringLength: z.number().int().min(1).max(64 * 1024 * 1024).default(1_000_000),
        maxDepth: z.number().int().min(1).max(1000).default(32),
        maxArrayLength: z.number().int().min(1).max(10_000_000).default(10_000),
        maxKeys: z.number().int().min(1).max(1_000_000).default(1_000),
        forbiddenArgs: z.array(z.string().min(1).max(128)).max(256).default(['exec', 'eval', 'import']).describe('Argument names refused at any depth'),
        maxResponseBytes: byteSize.default(4 * 1024 * 1024).describe("Largest response accepted from one of this workspace's servers"),
      })
      .default({ maxStringLength: 1_000_000, maxDepth: 32, maxArrayLength: 10_000, maxKeys: 1_000, forbiddenArgs: ['exec', 'eval', 'import'], maxResponseBytes: 4 * 1024 * 1024 })
      .describe('Request sanitising limits'),
    rateLimits: z
      .strictObject({
        perToken: bucket.default({ rate: 200, burst: 400 }).describe('Requests a second for one token'),
        perWorkspace: bucket.default({ rate: 1000, burst: 2000 }).describe('Requests a second for the whole workspace'),
        concurrentPerServer: z.number().int().min(1).max(10_000).default(64).describe('Requests in flight to one server'),
      })
      .default({ perToken: { rate: 200, burst: 400 }, perWorkspace: { rate: 1000, burst: 2000 }, concurrentPerServer: 64 })
      .describe('Rate limits on the MCP endpoint'),
    hibernate: z
      .strictObject({
        after: z
          .union([z.literal('never'), z.string().regex(/^\d+(ms|s|m|h)$/, 'must be a duration such as 90s, 30m, 2h, or "never"')])
          .default('30m')
          .describe('Stop the containers after this long without a request; the next request starts them again'),
      })
      .default({ after: '30m' })
      .describe('Idle hibernation'),
    audit: z
      .strictObject({
        requests: z.boolean().default(true).describe('Record every MCP request in the audit trail'),
        arguments: z.enum(['hash', 'none']).default('hash').describe('What of tool arguments the trail keeps: a hash, or nothing'),
      })
      .default({ requests: true, arguments: 'hash' })
      .describe('Audit settings (changing them is itself audited)'),
  })
  .superRefine((w, ctx) => {
    const seen = new Set<string>();
    w.servers.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['servers', i, 'name'], message: `duplicate server name "${s.name}"` });
      seen.add(s.name);
    });
    if (w.isolation === 'gvisor' && w.network !== 'none') {
      ctx.addIssue({
        code: 'custom',
        path: ['isolation'],
        message: 'gvisor isolation requires network "none": on this engine runsc runs with its network disabled',
      });
    }
  });

export type WorkspaceSpec = z.output<typeof workspaceSpecSchema>;
export type ServerSpec = WorkspaceSpec['servers'][number];
export type ResourceSpec = WorkspaceSpec['resources'];
export type Role = z.output<typeof roleSchema>;

/** Milliseconds of a duration such as 250ms, 90s, 30m, 2h. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

export type SpecResult = { ok: true; spec: WorkspaceSpec } | { ok: false; errors: string[] };

/** Formats a zod path the way a user writes it: servers[0].env.PATH */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(spec)';
}

export function validateSpec(input: unknown): SpecResult {
  const r = workspaceSpecSchema.safeParse(input);
  if (r.success) return { ok: true, spec: r.data };
  const errors = r.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key "${k}"`).join('; ');
    }
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
  return { ok: false, errors };
}

/** Parses YAML or JSON text, then validates it. */
export function parseSpecText(text: string): SpecResult {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [`(spec): not valid YAML or JSON: ${err instanceof Error ? err.message.split('\n')[0] : 'parse error'}`] };
  }
  return validateSpec(doc);
}
