#!/usr/bin/env bash
# One idempotent set-up for every entry point (npm test, npm run demo, npm run bench, npm run build):
# apt packages when missing, bpffs mounted, npm ci when node_modules is missing or stale,
# then the BPF objects, the native addon and the TypeScript, each rebuilt only when its sources changed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*" >&2; }

APT_PACKAGES=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool make g++ python3
  iproute2 iptables nftables conntrack procps iperf3 iputils-ping tcpdump socat
  containernetworking-plugins dnsmasq-base dnsperf wrk
  docker.io docker-compose podman etcd-server etcd-client
)
# Installed in a second step: resolving podman can swap it for the dynamic busybox, which fails
# inside the offline test image ("exec ...: no such file or directory").
APT_LAST=(busybox-static)

# ---- apt: install only what is missing ----
missing=()
for pkg in "${APT_PACKAGES[@]}" "${APT_LAST[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    say "missing apt packages (${missing[*]}) and not root: run as root once"; exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker.io ships dockerd and containerd services: no package may start one here (the tests
  # only use the docker CLI, and run any engine confined to a lab). policy-rc.d exit 101 is
  # Debian's "do not start services"; a temporary one is removed again whatever happens.
  own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    own_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$own_policy"
    chmod 755 "$own_policy"
    trap 'rm -f "$own_policy"' EXIT
  fi
  apt-get update -qq
  first=()
  for pkg in "${missing[@]}"; do [[ " ${APT_LAST[*]} " == *" $pkg "* ]] || first+=("$pkg"); done
  ((${#first[@]})) && apt-get install -y -qq --no-install-recommends "${first[@]}" >/dev/null
  apt-get install -y -qq --no-install-recommends "${APT_LAST[@]}" >/dev/null
  if [[ -n "$own_policy" ]]; then rm -f "$own_policy"; trap - EXIT; fi
fi

# ---- systemd-analyze checks the service unit (tests); Debian's systemd package installs it.
# Installing it starts nothing here: PID 1 is not systemd on these machines.
if ! command -v systemd-analyze >/dev/null && [[ $EUID -eq 0 ]]; then
  say "installing systemd (for systemd-analyze verify)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# ---- bpffs: pinned maps and links live here ----
if [[ $EUID -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
  say "mounting bpffs at /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

# node-gyp (ours and better-sqlite3's) must build against the local Node headers: no download.
if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node_api.h ]]; then
  export npm_config_nodedir=/usr
fi

# ---- npm: ci when node_modules is missing or older than the lockfile ----
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.bpfnet-lock ]] || [[ "$(cat node_modules/.bpfnet-lock)" != "$lock_hash" ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.bpfnet-lock
fi

# ---- BPF objects: make tracks header dependencies ----
make -s -C bpf

# ---- the benchmark's C tools (httpd, connrate) into build/bench/ ----
make -s -C bench/tools

# ---- the thin client (bin/bpfnet starts it) into build/bin/ ----
make -s -C client

# ---- native addon: configure once, then make's own incremental build ----
NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$NODE_GYP" ]] || NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
if [[ ! -f build/Makefile || binding.gyp -nt build/Makefile ]]; then
  say "configuring the addon"
  node "$NODE_GYP" configure --nodedir="${npm_config_nodedir:-}" --loglevel=error >/dev/null
fi
if [[ ! -f build/Release/bpfnet.node ]] || [[ -n "$(find native binding.gyp -newer build/Release/bpfnet.node -print -quit)" ]]; then
  say "building the addon"
  node "$NODE_GYP" build --loglevel=error >/dev/null
fi

# ---- TypeScript: only when a source is newer than the last build ----
if [[ ! -f dist/.built ]] || [[ -n "$(find src bench tsconfig.json package-lock.json -newer dist/.built -print -quit)" ]]; then
  say "compiling TypeScript"
  node_modules/.bin/tsc -p tsconfig.json
  touch dist/.built
fi

# ---- the CLI as one file: bin/bpfnet loads it (one module instead of ~30 halves its start-up) ----
# It sits as deep as src/cli/commands/, so the daemon command's relative import of daemon/main.js
# (left out of the bundle, loaded only by `bpfnet daemon`) resolves to dist/src/daemon/main.js.
if [[ ! -f dist/src/cli/bundle/bpfnet.js || dist/.built -nt dist/src/cli/bundle/bpfnet.js ]]; then
  say "bundling the CLI"
  node_modules/.bin/esbuild src/cli/main.ts --bundle --platform=node --target=node20 --format=esm --minify \
    --legal-comments=none --log-level=warning --outfile=dist/src/cli/bundle/bpfnet.js \
    --banner:js="import { createRequire as __bpfnetRequire } from 'node:module'; const require = __bpfnetRequire(import.meta.url);"
fi

# ---- the CNI plugin as one file: bin/bpfnet-cni loads it (a runtime starts it once per ADD/DEL) ----
if [[ ! -f dist/src/cni/bundle/bpfnet-cni.js || dist/.built -nt dist/src/cni/bundle/bpfnet-cni.js ]]; then
  say "bundling the CNI plugin"
  node_modules/.bin/esbuild src/cni/main.ts --bundle --platform=node --target=node20 --format=esm --minify \
    --legal-comments=none --log-level=warning --outfile=dist/src/cni/bundle/bpfnet-cni.js
fi
