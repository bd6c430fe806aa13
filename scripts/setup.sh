#!/usr/bin/env bash
# Installs and starts what mcpx needs on a Debian machine: Node >= 22, the Docker Engine, the npm dependencies.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Node >= 22: Debian ships an older one; the npm registry's `node` package carries a current binary.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  if ! command -v npm >/dev/null 2>&1; then log "installing nodejs and npm from Debian"; apt_install nodejs npm; fi
  log "installing Node 22 into /usr/local"
  as_root npm i -g --prefix /usr/local node@22 >/dev/null 2>&1
  hash -r
  export PATH="/usr/local/bin:$PATH"
fi
log "node $(node --version)"

# Isolation tools: iptables (workspace firewall), losetup and mkfs.ext4 (disk quotas), runsc (the gVisor tier).
missing=()
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v losetup >/dev/null 2>&1 || missing+=(mount)
{ command -v mkfs.ext4 >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1; } || missing+=(e2fsprogs)
[ -x /usr/bin/runsc ] || missing+=(runsc)
if [ "${#missing[@]}" -gt 0 ]; then log "installing ${missing[*]} from Debian"; apt_install "${missing[@]}"; fi

# runsc works here only with its own network disabled (so the gVisor tier is for network-less workspaces).
# Registered in daemon.json; the file is rewritten, and dockerd told, only when the registration is missing.
daemon_json=/etc/docker/daemon.json
daemon_changed=0
if ! node -e '
  const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const r = c.runtimes && c.runtimes.runsc;
  process.exit(r && r.path === "/usr/bin/runsc" && JSON.stringify(r.runtimeArgs) === JSON.stringify(["--network=none"]) ? 0 : 1);
' "$daemon_json" 2>/dev/null; then
  log "registering runsc in $daemon_json"
  as_root mkdir -p /etc/docker
  as_root node -e '
    const fs = require("fs"); const f = process.argv[1];
    let c = {}; try { c = JSON.parse(fs.readFileSync(f, "utf8")); } catch {}
    c.runtimes = { ...(c.runtimes || {}), runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=none"] } };
    fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n");
  ' "$daemon_json"
  daemon_changed=1
fi

# The Docker Engine: Debian's docker.io, started in the background when nothing answers.
engine_up() { docker info >/dev/null 2>&1 || curl -fsS --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }
has_runsc() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }
if ! engine_up; then
  if ! command -v dockerd >/dev/null 2>&1; then log "installing docker.io from Debian"; apt_install docker.io; fi
  if ! engine_up; then
    log "starting dockerd"
    as_root bash -c 'nohup dockerd >/var/log/mcpx-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do engine_up && break; sleep 1; done
  fi
elif [ "$daemon_changed" = 1 ] || ! has_runsc; then
  # dockerd reloads its runtimes on SIGHUP: running containers (of this or any other project) are not disturbed.
  pid=$(pidof dockerd || true)
  if [ -n "$pid" ]; then
    log "reloading dockerd's configuration (SIGHUP)"
    as_root kill -HUP $pid
    for _ in $(seq 1 20); do has_runsc && break; sleep 0.5; done
  fi
fi
engine_up || { log "the Docker Engine does not answer; see /var/log/mcpx-dockerd.log"; exit 1; }
has_runsc || log "warning: the engine does not list runsc; the gVisor tier is unavailable (see: npx mcpx doctor)"
log "docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo up)"

# Dependencies (npm ci also builds dist/ through the prepare script). Skipped when the lock has not changed.
stamp=node_modules/.mcpx-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "npm ci"
  npm ci --no-audit --no-fund >/dev/null
  cp package-lock.json "$stamp"
else
  npm run -s build
fi
log "ready"
