// The rules of protocol revision 2026-07-28 as pure functions: which POSTs belong to it, the validation ladder
// (envelope, versions, standard headers) with the errors the revision prescribes, and the shape of its results.
import { RPC } from './json-rpc.js';
import type { JsonRpcErrorObject, JsonRpcId, JsonRpcNotification, JsonRpcRequest } from './json-rpc.js';
import { LOGGING_LEVELS, SUPPORTED_PROTOCOL_VERSIONS } from './workspace-router.js';
import type { ArgumentHeaderIssue, ChangeSupport, ListenFilter } from './workspace-router.js';

export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** The modern revisions this gateway serves statelessly (an envelope naming any other is refused with -32022). */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = [MODERN_PROTOCOL_VERSION];

export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

/** The error codes the revision allocates in its reserved sub-range (basic/index "Error Codes"). */
export const MODERN_ERROR = {
  headerMismatch: -32020,
  missingRequiredClientCapability: -32021,
  unsupportedProtocolVersion: -32022,
} as const;

export const HEADERS = { protocolVersion: 'mcp-protocol-version', method: 'mcp-method', name: 'mcp-name', session: 'mcp-session-id' } as const;

/** The request methods of the revision's registry; any other method is answered 404 / -32601. */
export const MODERN_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
  'subscriptions/listen',
]);

/** The requests that may be answered with an `input_required` result (MRTR "Supported Requests"). */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Results that must carry `ttlMs` and `cacheScope` (SEP-2549 CacheableResult). */
const CACHEABLE_METHODS: ReadonlySet<string> = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/** Which body field the `Mcp-Name` header mirrors, per method (streamable-http "Standard Request Headers"). */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

const LOG_LEVELS: ReadonlySet<string> = new Set(LOGGING_LEVELS);
const CLIENT_CAPABILITY_OBJECTS = ['experimental', 'sampling', 'elicitation', 'roots', 'extensions'] as const;

type Params = Record<string, unknown>;
const isObject = (v: unknown): v is Params => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Revisions are ISO dates; every one from 2026-07-28 on carries its version per request. */
export function isModernVersion(v: string | undefined): v is string {
  return v !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= MODERN_PROTOCOL_VERSION;
}

export interface Envelope {
  protocolVersion: string;
  clientCapabilities: Params;
  clientInfo?: unknown;
  logLevel?: string;
}

export interface Rejection {
  kind: 'reject';
  status: number;
  error: JsonRpcErrorObject;
  id: JsonRpcId | null;
}

export type Admission =
  | { kind: 'legacy' }
  | { kind: 'reject'; status: number; error: JsonRpcErrorObject; id: JsonRpcId | null }
  | { kind: 'request'; msg: JsonRpcRequest; envelope: Envelope }
  | { kind: 'notification'; msg: JsonRpcNotification };

export interface PostHeaders {
  protocolVersion?: string | undefined;
  method?: string | undefined;
  name?: string | undefined;
}

const reject = (status: number, code: number, message: string, id: JsonRpcId | null, data?: unknown): Rejection => ({
  kind: 'reject',
  status,
  error: { code, message, ...(data === undefined ? {} : { data }) },
  id,
});

const mismatch = (id: JsonRpcId | null, header: string, body: string): Rejection =>
  reject(400, MODERN_ERROR.headerMismatch, `Bad Request: the request headers and body disagree: ${body}`, id, { mismatch: { header, body } });

/** Trims the optional whitespace (SP, HTAB) RFC 9110 allows around a field value. */
const ows = (v: string | undefined): string | undefined => (v === undefined ? undefined : v.replace(/^[ \t]+|[ \t]+$/g, ''));

const metaOf = (params: unknown): Params | undefined => (isObject(params) && isObject(params._meta) ? params._meta : undefined);
const hasClaim = (params: unknown): boolean => {
  const meta = metaOf(params);
  return meta !== undefined && META.protocolVersion in meta;
};

/** The first problem with a request's `_meta` envelope, as `{key, problem}`; undefined when it is well formed. */
export function envelopeIssue(meta: Params | undefined): { key: string; problem: string } | undefined {
  if (!meta) return { key: '_meta', problem: 'missing' };
  for (const key of [META.protocolVersion, META.clientCapabilities]) if (!(key in meta)) return { key, problem: 'missing' };
  if (typeof meta[META.protocolVersion] !== 'string') return { key: META.protocolVersion, problem: 'expected a string' };
  const caps = meta[META.clientCapabilities];
  if (!isObject(caps)) return { key: META.clientCapabilities, problem: 'expected an object' };
  for (const k of CLIENT_CAPABILITY_OBJECTS) {
    if (caps[k] !== undefined && !isObject(caps[k])) return { key: `${META.clientCapabilities}.${k}`, problem: 'expected an object' };
  }
  const info = meta[META.clientInfo];
  if (info !== undefined && !(isObject(info) && typeof info.name === 'string' && typeof info.version === 'string')) {
    return { key: META.clientInfo, problem: 'expected an object with string name and version' };
  }
  const level = meta[META.logLevel];
  if (level !== undefined && !(typeof level === 'string' && LOG_LEVELS.has(level))) return { key: META.logLevel, problem: 'expected a logging level' };
  const token = meta.progressToken;
  if (token !== undefined && typeof token !== 'string' && !Number.isInteger(token)) return { key: 'progressToken', problem: 'expected a string or an integer' };
  return undefined;
}

const isId = (v: unknown): v is JsonRpcId => typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));

/**
 * Decides what one POSTed body is, body first (a proxy that strips a header must not change the era), and runs the
 * revision's validation ladder in its order: message shape, envelope (-32602), header/body disagreement (-32020),
 * supported version (-32022), required standard headers (-32020). `legacy` hands the POST to the 2025 transport.
 */
export function admitPost(headers: PostHeaders, body: unknown): Admission {
  const versionHeader = ows(headers.protocolVersion);
  const methodHeader = ows(headers.method);
  const nameHeader = ows(headers.name);
  const modernHeader = isModernVersion(versionHeader);

  if (Array.isArray(body)) {
    if (modernHeader || body.some((m) => isObject(m) && hasClaim(m.params))) {
      return reject(400, RPC.invalidRequest, 'Bad Request: JSON-RPC batches are not supported by protocol revision 2026-07-28', null);
    }
    return { kind: 'legacy' };
  }
  const m = isObject(body) ? body : undefined;
  const isMessage = m !== undefined && m.jsonrpc === '2.0' && typeof m.method === 'string' && m.method !== '' && (m.params === undefined || isObject(m.params));
  if (!isMessage) {
    if (!modernHeader) return { kind: 'legacy' };
    const posted = m !== undefined && ('result' in m || 'error' in m) && !('method' in m);
    return reject(400, RPC.invalidRequest, posted ? 'Bad Request: JSON-RPC responses cannot be posted under protocol revision 2026-07-28' : 'Bad Request: the body is not a JSON-RPC request or notification', null);
  }
  const method = m.method as string;
  const params = m.params;
  if ('id' in m) {
    if (!isId(m.id)) return modernHeader ? reject(400, RPC.invalidRequest, 'Bad Request: a request id must be a string or an integer', null) : { kind: 'legacy' };
    const id = m.id;
    const claim = hasClaim(params);
    if (method === 'initialize' && !(claim && envelopeIssue(metaOf(params)) === undefined && isModernVersion(metaOf(params)?.[META.protocolVersion] as string))) {
      if (modernHeader) return mismatch(id, versionHeader, 'an initialize request (the 2025 handshake) was sent with a 2026-07-28 MCP-Protocol-Version header');
      return { kind: 'legacy' };
    }
    if (!claim) {
      if (!modernHeader) return { kind: 'legacy' };
      const issue = envelopeIssue(metaOf(params)) ?? { key: META.protocolVersion, problem: 'missing' };
      return reject(400, RPC.invalidParams, `Invalid params: the MCP-Protocol-Version header names ${versionHeader}, but the request lacks the per-request _meta envelope (${issue.key}: ${issue.problem})`, id, { envelope: issue });
    }
    const meta = metaOf(params)!;
    const issue = envelopeIssue(meta);
    if (issue) return reject(400, RPC.invalidParams, `Invalid params: invalid _meta envelope for protocol revision 2026-07-28: ${issue.key}: ${issue.problem}`, id, { envelope: issue });
    const claimed = meta[META.protocolVersion] as string;
    if (versionHeader !== undefined && versionHeader !== claimed) {
      return mismatch(id, versionHeader, `the body's _meta names protocol version ${claimed} but the MCP-Protocol-Version header names ${versionHeader}`);
    }
    if (methodHeader !== undefined && methodHeader !== method) return mismatch(id, methodHeader, `the body names method ${method} but the Mcp-Method header names ${methodHeader}`);
    if (!MODERN_PROTOCOL_VERSIONS.includes(claimed)) return unsupportedVersion(id, claimed);
    // Presence of the standard headers, checked once the version is known to be served (SEP-2243).
    if (versionHeader === undefined) return mismatch(id, '(missing)', `the body's _meta names protocol version ${claimed} but the required MCP-Protocol-Version header is absent`);
    if (methodHeader === undefined) return mismatch(id, '(missing)', `the body names method ${method} but the required Mcp-Method header is absent`);
    const field = Object.hasOwn(NAME_SOURCE, method) ? NAME_SOURCE[method] : undefined;
    if (field) {
      const value = isObject(params) && typeof params[field] === 'string' ? params[field] : undefined;
      if (nameHeader === undefined) {
        if (value !== undefined) return mismatch(id, '(missing)', `the body carries params.${field}="${value}" but the required Mcp-Name header is absent`);
      } else {
        const decoded = decodeHeaderValue(nameHeader);
        if (decoded === undefined) return mismatch(id, nameHeader, 'the Mcp-Name header carries an invalid Base64 sentinel value');
        if (value !== undefined && decoded !== value) return mismatch(id, nameHeader, `the body carries params.${field}="${value}" but the Mcp-Name header names "${decoded}"`);
      }
    }
    const caps = meta[META.clientCapabilities] as Params;
    const envelope: Envelope = { protocolVersion: claimed, clientCapabilities: caps };
    if (meta[META.clientInfo] !== undefined) envelope.clientInfo = meta[META.clientInfo];
    if (typeof meta[META.logLevel] === 'string') envelope.logLevel = meta[META.logLevel] as string;
    return { kind: 'request', msg: m as unknown as JsonRpcRequest, envelope };
  }

  // A notification: no envelope of its own in this revision, so the header decides when the body makes no claim.
  let version: string | undefined;
  if (hasClaim(params)) {
    const claimed = metaOf(params)![META.protocolVersion];
    if (typeof claimed !== 'string') {
      return reject(400, RPC.invalidParams, `Invalid params: invalid _meta envelope for protocol revision 2026-07-28: ${META.protocolVersion}: expected a string`, null, {
        envelope: { key: META.protocolVersion, problem: 'expected a string' },
      });
    }
    if (versionHeader !== undefined && versionHeader !== claimed) {
      return mismatch(null, versionHeader, `the notification's _meta names protocol version ${claimed} but the MCP-Protocol-Version header names ${versionHeader}`);
    }
    if (!isModernVersion(claimed)) return { kind: 'legacy' };
    version = claimed;
  } else if (modernHeader) {
    version = versionHeader;
  } else {
    return { kind: 'legacy' };
  }
  if (methodHeader !== undefined && methodHeader !== method) return mismatch(null, methodHeader, `the notification names method ${method} but the Mcp-Method header names ${methodHeader}`);
  if (!MODERN_PROTOCOL_VERSIONS.includes(version)) return unsupportedVersion(null, version);
  return { kind: 'notification', msg: m as unknown as JsonRpcNotification };
}

export function unsupportedVersion(id: JsonRpcId | null, requested: string): Rejection {
  return reject(400, MODERN_ERROR.unsupportedProtocolVersion, `Unsupported protocol version: ${requested}`, id, { supported: [...MODERN_PROTOCOL_VERSIONS], requested });
}

const BASE64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes the `=?base64?...?=` sentinel form of an `Mcp-Name` / `Mcp-Param-*` value; undefined when it is malformed. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith('=?base64?') && value.endsWith('?='))) return value;
  const b64 = value.slice('=?base64?'.length, value.length - 2);
  if (!BASE64_CANONICAL.test(b64)) return undefined;
  try {
    return utf8.decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

/** The params a 2025 server receives: the envelope and the MRTR retry fields are the gateway's, not the server's. */
export function upstreamParams(params: Params | undefined): Params | undefined {
  if (!params) return params;
  const rest: Params = { ...params };
  delete rest.inputResponses;
  delete rest.requestState;
  delete rest._meta;
  if (!isObject(params._meta)) return rest;
  const meta: Params = {};
  for (const [k, v] of Object.entries(params._meta)) if (k !== META.protocolVersion && k !== META.clientInfo && k !== META.clientCapabilities && k !== META.logLevel) meta[k] = v;
  return Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : rest;
}

const NO_CHANGES: ChangeSupport = { tools: false, prompts: false, resources: false, subscribe: false, logging: false };

/**
 * Server capabilities as this gateway can honour them on the revision: `listChanged` and `subscribe` only where a
 * server of the workspace declares them (they are delivered on `subscriptions/listen` streams); `logging` only where
 * a server declares it (its log messages reach the request that carries a `logLevel`); tasks left the core protocol.
 */
export function modernCapabilities(caps: Params, support: ChangeSupport = NO_CHANGES): Params {
  const out: Params = {};
  if (support.logging) out.logging = {};
  for (const key of ['experimental', 'completions', 'extensions'] as const) if (isObject(caps[key])) out[key] = caps[key];
  for (const key of ['tools', 'prompts', 'resources'] as const) {
    const c = caps[key];
    if (!isObject(c)) continue;
    const rest: Params = { ...c };
    delete rest.listChanged;
    delete rest.subscribe;
    if (support[key]) rest.listChanged = true;
    if (key === 'resources' && support.subscribe) rest.subscribe = true;
    out[key] = rest;
  }
  return out;
}

/**
 * The `notifications` filter of a `subscriptions/listen` request (the revision's SubscriptionFilter): an object whose
 * flags are booleans and whose `resourceSubscriptions` is an array of strings; keys it does not define are ignored.
 * Undefined when malformed (the request is then refused with -32602).
 */
export function subscriptionFilter(v: unknown): ListenFilter | undefined {
  if (!isObject(v)) return undefined;
  const out: ListenFilter = {};
  for (const flag of ['toolsListChanged', 'promptsListChanged', 'resourcesListChanged'] as const) {
    const f = v[flag];
    if (f === undefined) continue;
    if (typeof f !== 'boolean') return undefined;
    out[flag] = f;
  }
  const uris = v.resourceSubscriptions;
  if (uris !== undefined) {
    if (!Array.isArray(uris) || !uris.every((u): u is string => typeof u === 'string')) return undefined;
    out.resourceSubscriptions = uris;
  }
  return out;
}

/**
 * A complete result as the revision shapes it: `resultType`, the cache fields on cacheable results (private and
 * not cacheable: the gateway does not promise freshness, a client that wants it listens for changes), no `execution` on
 * tools, and the serving identity in `_meta`.
 */
export function modernResult(method: string, result: unknown, serverInfo: unknown): Params {
  const r: Params = { ...(isObject(result) ? result : {}) };
  if (method === 'tools/list' && Array.isArray(r.tools)) {
    r.tools = r.tools.map((t: unknown) => {
      if (!isObject(t) || !('execution' in t)) return t;
      const rest: Params = { ...t };
      delete rest.execution;
      return rest;
    });
  }
  r.resultType = 'complete';
  if (CACHEABLE_METHODS.has(method)) {
    r.ttlMs = 0;
    r.cacheScope = 'private';
  }
  const meta = isObject(r._meta) ? r._meta : {};
  r._meta = META.serverInfo in meta ? meta : { ...meta, [META.serverInfo]: serverInfo };
  return r;
}

/** Errors the revision renames: resource-not-found is -32602 with `data.uri` (basic/index "Error Codes"). */
export function modernError(error: JsonRpcErrorObject, method: string, params: Params | undefined): JsonRpcErrorObject {
  if (error.code === -32002) {
    const uri = isObject(error.data) && typeof error.data.uri === 'string' ? error.data.uri : typeof params?.uri === 'string' ? params.uri : undefined;
    return { code: RPC.invalidParams, message: error.message, ...(uri !== undefined ? { data: { uri } } : {}) };
  }
  if (error.code === -32042) {
    // URL-elicitation-required belongs to 2025-11-25 only; the revision must not emit it.
    return { code: RPC.internalError, message: `${method} needs the user to complete an interaction in a browser, which this gateway cannot bridge: ${error.message}` };
  }
  if (error.code <= -32020 && error.code >= -32099 && !DEFINED_CODES.has(error.code)) {
    // The sub-range is the specification's: a code it does not define must not reach a client of this revision.
    return { code: RPC.internalError, message: error.message, data: { code: error.code, ...(isObject(error.data) ? error.data : {}) } };
  }
  return error;
}

const DEFINED_CODES: ReadonlySet<number> = new Set(Object.values(MODERN_ERROR));

/**
 * HTTP status of an error produced while handling a request: in band (200), except the ones the revision pins to
 * 400 (a missing client capability; a header mismatch found once the tool's schema is known).
 */
export const inBandStatus = (code: number): number => (code === MODERN_ERROR.missingRequiredClientCapability || code === MODERN_ERROR.headerMismatch ? 400 : 200);

// ---- Mcp-Param-* headers (streamable-http "Custom Headers from Tool Parameters", SEP-2243) ----------------------

/** One tool parameter mirrored into a header: where it sits in the arguments, and the header that carries it. */
export interface ParamDeclaration {
  /** The chain of `properties` keys from the schema root to the parameter. */
  path: readonly string[];
  /** `Mcp-Param-<x-mcp-header>` as declared, and lower-cased as Node presents header names. */
  header: string;
  key: string;
  type?: string;
}

const RFC9110_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NO_DECLARATIONS: readonly ParamDeclaration[] = [];
/** Per input schema object (the router's catalog keeps one per tool until its list changes): scanned once. */
const declarationCache = new WeakMap<object, readonly ParamDeclaration[]>();

/**
 * The `x-mcp-header` declarations of a tool's input schema that a call must mirror: those statically reachable
 * through `properties` keys alone, with a token for a name. An annotation anywhere else makes the tool invalid for
 * clients (they drop it); the gateway does not expect a header for it. Cached per schema object, so a tool that
 * declares nothing costs one WeakMap look-up per call.
 */
export function paramDeclarations(inputSchema: unknown): readonly ParamDeclaration[] {
  if (!isObject(inputSchema)) return NO_DECLARATIONS;
  const cached = declarationCache.get(inputSchema);
  if (cached) return cached;
  const found: ParamDeclaration[] = [];
  const visit = (node: Params, path: string[], depth: number): void => {
    if (depth > 32 || !isObject(node.properties)) return;
    for (const [name, child] of Object.entries(node.properties)) {
      if (!isObject(child)) continue;
      const at = [...path, name];
      const declared = child['x-mcp-header'];
      if (typeof declared === 'string' && RFC9110_TOKEN.test(declared)) {
        found.push({ path: at, header: `Mcp-Param-${declared}`, key: `mcp-param-${declared.toLowerCase()}`, ...(typeof child.type === 'string' ? { type: child.type } : {}) });
      }
      visit(child, at, depth + 1);
    }
  };
  visit(inputSchema, [], 0);
  const out = found.length === 0 ? NO_DECLARATIONS : found;
  declarationCache.set(inputSchema, out);
  return out;
}

/** Visible ASCII, space and tab: what a plain header value may carry (Node reads other bytes as Latin-1). */
const PLAIN_HEADER_VALUE = /^[\t\x20-\x7e]*$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;

/**
 * Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments, declaration by declaration: a value
 * in the body (not null) needs its header, decoded (Base64 sentinel) equal to it (integers compared as numbers,
 * booleans as `true`/`false`); a header with no value in the body, a value with invalid characters, or a malformed
 * sentinel is refused too. Headers the tool does not declare are ignored. The answer is the revision's
 * HeaderMismatch (-32020, HTTP 400), shaped like the standard headers' refusals.
 */
export function paramHeaderIssue(declarations: readonly ParamDeclaration[], args: unknown, header: (key: string) => string | undefined): ArgumentHeaderIssue | undefined {
  for (const d of declarations) {
    let value: unknown = args;
    for (const k of d.path) value = isObject(value) ? value[k] : undefined;
    const raw = header(d.key);
    const where = `arguments.${d.path.join('.')}`;
    if (value === undefined || value === null) {
      if (raw === undefined) continue;
      return paramMismatch(d.header, `the ${d.header} header is present but the body carries no ${where}`);
    }
    const body = typeof value === 'string' ? value : typeof value === 'boolean' ? String(value) : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
    if (raw === undefined) {
      return paramMismatch(d.header, `the body carries ${where}=${JSON.stringify(value)} but the required ${d.header} header is absent`);
    }
    if (!PLAIN_HEADER_VALUE.test(raw)) return paramMismatch(d.header, `the ${d.header} header carries invalid characters (use the Base64 sentinel form)`);
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) return paramMismatch(d.header, `the ${d.header} header carries an invalid Base64 sentinel value`);
    const same = typeof value === 'number' ? DECIMAL.test(decoded) && Number(decoded) === value : body !== undefined && decoded === body;
    if (!same) return paramMismatch(d.header, `the ${d.header} header decodes to ${JSON.stringify(decoded)} but the body carries ${where}=${JSON.stringify(value)}`);
  }
  return undefined;
}

const paramMismatch = (header: string, body: string): ArgumentHeaderIssue => ({
  code: MODERN_ERROR.headerMismatch,
  message: `Bad Request: the request headers and body disagree: ${body}`,
  data: { mismatch: { header, body } },
});

/**
 * The client capabilities an embedded input request needs and the client did not declare (the shape of
 * `data.requiredCapabilities`); undefined when it may be sent. A bare `elicitation: {}` means form mode.
 */
export function missingCapabilities(method: string, params: Params | undefined, declared: Params): Params | undefined {
  const has = (v: unknown): v is Params => isObject(v);
  switch (method) {
    case 'sampling/createMessage': {
      if (!has(declared.sampling)) return { sampling: params?.tools !== undefined || params?.toolChoice !== undefined ? { tools: {} } : {} };
      if ((params?.tools !== undefined || params?.toolChoice !== undefined) && !has(declared.sampling.tools)) return { sampling: { tools: {} } };
      return undefined;
    }
    case 'elicitation/create': {
      const mode = params?.mode === 'url' ? 'url' : 'form';
      const e = declared.elicitation;
      if (!has(e)) return { elicitation: { [mode]: {} } };
      if (mode === 'url' && !has(e.url)) return { elicitation: { url: {} } };
      if (mode === 'form' && !has(e.form) && has(e.url)) return { elicitation: { form: {} } };
      return undefined;
    }
    case 'roots/list':
      return has(declared.roots) ? undefined : { roots: {} };
    default:
      return {};
  }
}

/** An embedded input request as the revision shapes it (URL elicitation lost its `elicitationId`). */
export function inputRequest(method: string, params: Params | undefined): Params {
  const p: Params = { ...(params ?? {}) };
  delete p._meta;
  delete p.task;
  if (method === 'elicitation/create' && p.mode === 'url') delete p.elicitationId;
  return { method, params: p };
}

/** Every protocol version the gateway serves, newest first (what `server/discover` advertises). */
export const ALL_SUPPORTED_VERSIONS: readonly string[] = [...MODERN_PROTOCOL_VERSIONS, ...[...SUPPORTED_PROTOCOL_VERSIONS].reverse()];
