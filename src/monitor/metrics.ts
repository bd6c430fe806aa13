// Prometheus metrics of the gateway (prom-client), on a registry of its own.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mcpx_process_' });
  return {
    registry,
    /** A gauge read when scraped, from a count the gateway keeps anyway (sessions, streams). */
    live(name: string, help: string, read: () => number): void {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    },
    httpRequests: new Counter({
      name: 'mcpx_http_requests_total',
      help: 'HTTP requests by route family and status code',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'mcpx_http_request_duration_seconds',
      help: 'HTTP request duration by route family',
      labelNames: ['route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    wakeups: new Histogram({
      name: 'mcpx_workspace_wakeup_seconds',
      help: 'Time from the first request to a hibernating workspace until it is ready again',
      buckets: [0.1, 0.25, 0.5, 0.8, 1, 2, 5, 10],
      registers: [registry],
    }),
    workspaces: new Gauge({
      name: 'mcpx_workspaces',
      help: 'Workspaces by status',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
