// The CLI's HTTP client for a running gateway: bearer token, JSON in and out, one-line reasons on failure.
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface ApiOptions {
  url: string;
  token?: string;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export function createApiClient(opts: ApiOptions) {
  const base = opts.url.replace(/\/+$/, '');
  return async function api<T = unknown>(method: string, path: string, body?: unknown, allow: number[] = []): Promise<ApiResponse<T>> {
    if (!opts.token) throw new CliError('no token: pass --token or set MCPX_TOKEN (create one with `mcpx token create --sub USER`)');
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          authorization: `Bearer ${opts.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err instanceof Error ? err.message : String(err));
      throw new CliError(`cannot reach the gateway at ${base} (${cause})`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok && !allow.includes(res.status)) {
      const p = parsed as { detail?: string; title?: string } | undefined;
      throw new CliError(`${res.status} ${p?.detail ?? p?.title ?? res.statusText}`);
    }
    return { status: res.status, body: parsed as T };
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;
