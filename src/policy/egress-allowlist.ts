// Pure egress decisions: is a requested destination on a workspace's allowlist, and may the proxy connect to the
// address it resolved to? Fails closed: anything not matched exactly is refused, with a reason.
import { BlockList, isIP } from 'node:net';

export interface AllowEntry {
  /** Lower-case host name, or a normalised IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** True when the entry names an address, not a name: only then may it reach a private or loopback address. */
  literal: boolean;
}

export type EgressDecision = { ok: true; entry: AllowEntry } | { ok: false; reason: string };

/** Addresses a name must never resolve to unless the allowlist names the address itself (DNS rebinding). */
const LOCAL_RANGES = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  LOCAL_RANGES.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  LOCAL_RANGES.addSubnet(net, prefix, 'ipv6');
}

/** True for loopback, private, link-local, carrier-grade NAT, multicast, reserved and unspecified addresses. */
export function isLocalAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const a = mapped ?? address;
  const family = isIP(a);
  if (family === 0) return false;
  return LOCAL_RANGES.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

function normaliseHost(host: string): string {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  return h;
}

/** Parses "host:port" or "[v6]:port" as the spec writes it. Returns undefined for anything else. */
export function parseDestination(text: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s/]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  const host = normaliseHost(m[1]!);
  if (!host) return undefined;
  return { host, port };
}

export function parseAllowlist(entries: readonly string[]): AllowEntry[] {
  const out: AllowEntry[] = [];
  for (const e of entries) {
    const d = parseDestination(e);
    if (d) out.push({ ...d, literal: isIP(d.host) !== 0 });
  }
  return out;
}

/** Is the destination, as the client asked for it, on the allowlist? Host names compare case-insensitively. */
export function decideDestination(allowlist: readonly AllowEntry[], host: string, port: number): EgressDecision {
  const h = normaliseHost(host);
  const entry = allowlist.find((e) => e.host === h && e.port === port);
  if (!entry) return { ok: false, reason: 'not on the allowlist' };
  return { ok: true, entry };
}

/**
 * May the proxy connect to this resolved address for this entry? A name must resolve to a public address; a private
 * or loopback one is allowed only when the entry is that very address. Ports the gateway itself serves on are
 * refused on any local address, whatever the allowlist says.
 */
export function decideAddress(entry: AllowEntry, address: string, protectedPorts: readonly number[] = []): EgressDecision {
  if (isIP(address) === 0) return { ok: false, reason: 'the destination did not resolve to an address' };
  const local = isLocalAddress(address);
  if (local && protectedPorts.includes(entry.port)) return { ok: false, reason: "the gateway's own port" };
  if (entry.literal) {
    return normaliseHost(address) === entry.host || sameAddress(address, entry.host)
      ? { ok: true, entry }
      : { ok: false, reason: `connected address ${address} is not the allowlisted ${entry.host}` };
  }
  if (local) return { ok: false, reason: `${entry.host} resolved to a local or private address (${address})` };
  return { ok: true, entry };
}

function sameAddress(a: string, b: string): boolean {
  if (isIP(a) !== isIP(b) || isIP(a) === 0) return false;
  const list = new BlockList();
  list.addAddress(b, isIP(b) === 4 ? 'ipv4' : 'ipv6');
  return list.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
}
