#!/usr/bin/env bash
# Installs bpfnet from this clone's built artefacts (run scripts/bootstrap.sh first):
#   PREFIX/lib/bpfnet/          the program: dist/src, build/bpf, the addon, the thin client, production node_modules
#   PREFIX/bin/bpfnet           the command
#   PREFIX/lib/systemd/system/bpfnet.service
#   SYSCONFDIR/bpfnet/daemon.json   only when absent (an existing one is the admin's and stays)
# and writes PREFIX/lib/bpfnet/install-manifest, so `--uninstall` removes exactly that.
# Options: --prefix DIR (default /usr/local), --sysconfdir DIR (default /etc), --destdir DIR
# (or $DESTDIR: stage under DIR, as packagers do), --uninstall. Never starts or enables anything.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

PREFIX=/usr/local
SYSCONFDIR=/etc
DESTDIR=${DESTDIR:-}
UNINSTALL=0
while (($#)); do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --sysconfdir) SYSCONFDIR=$2; shift 2 ;;
    --destdir) DESTDIR=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $PREFIX == /* && $SYSCONFDIR == /* ]] || { echo "install.sh: --prefix and --sysconfdir must be absolute paths" >&2; exit 2; }

say() { printf '[install] %s\n' "$*" >&2; }
LIB="$DESTDIR$PREFIX/lib/bpfnet"
MANIFEST="$LIB/install-manifest"

if ((UNINSTALL)); then
  [[ -f $MANIFEST ]] || { echo "install.sh: no bpfnet installed under $DESTDIR$PREFIX ($MANIFEST is missing)" >&2; exit 1; }
  # Files first, then the directories we created, deepest first, only when empty (an admin's
  # file left inside one keeps it).
  # The manifest lists itself: read it before anything goes.
  recorded=$(cat "$MANIFEST")
  n=$(grep -c $'^f\t' <<<"$recorded" || true)
  awk -F'\t' -v d="$DESTDIR" '$1 == "f" { printf "%s%s%c", d, $2, 0 }' <<<"$recorded" | xargs -0 -r rm -f --
  awk -F'\t' -v d="$DESTDIR" '$1 == "d" { print length($2) "\t" d $2 }' <<<"$recorded" | sort -rn | cut -f2- | tr '\n' '\0' |
    xargs -0 -r rmdir --ignore-fail-on-non-empty -- 2>/dev/null || true
  say "removed $n files installed under $DESTDIR$PREFIX and $DESTDIR$SYSCONFDIR"
  exit 0
fi

for artefact in dist/src/cli/main.js dist/src/daemon/main.js build/Release/bpfnet.node build/bpf/lxc.bpf.o \
  node_modules/better-sqlite3/build/Release/better_sqlite3.node node_modules/prom-client/package.json; do
  [[ -e $artefact ]] || { echo "install.sh: $artefact is missing: run scripts/bootstrap.sh (npm run build) first" >&2; exit 1; }
done
NODE=$(command -v node) || { echo "install.sh: node is not on PATH" >&2; exit 1; }
[[ -f $MANIFEST ]] && { echo "install.sh: bpfnet is already installed under $DESTDIR$PREFIX: run with --uninstall first" >&2; exit 1; }

entries=()
# mkdir -p, recording each directory that did not exist (uninstall removes only those).
ensure_dir() {
  local d=$1 missing=()
  while [[ ! -d $DESTDIR$d ]]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do mkdir -m 0755 "$DESTDIR$d"; entries+=("d	$d"); done
}
# Copies a file or a tree to DEST (a path under PREFIX/SYSCONFDIR), recording what it made.
put() {
  local from=$1 to=$2 rel
  if [[ -d $from ]]; then
    ensure_dir "$to"
    while IFS= read -r -d '' rel; do
      [[ -d $DESTDIR$to/$rel ]] || entries+=("d	$to/$rel")
    done < <(cd "$from" && find . -mindepth 1 -type d -printf '%P\0')
    while IFS= read -r -d '' rel; do
      entries+=("f	$to/$rel")
    done < <(cd "$from" && find . -mindepth 1 ! -type d -printf '%P\0')
    cp -a -- "$from/." "$DESTDIR$to/"
  else
    ensure_dir "$(dirname "$to")"
    cp -P -- "$from" "$DESTDIR$to"
    entries+=("f	$to")
  fi
}

L=$PREFIX/lib/bpfnet
say "installing to $DESTDIR$PREFIX"
put package.json "$L/package.json"
put README.md "$L/README.md"
put bin/bpfnet "$L/bin/bpfnet"
put build/bin/bpfnet "$L/build/bin/bpfnet"
put dist/src "$L/dist/src"
put build/bpf "$L/build/bpf"
put build/Release/bpfnet.node "$L/build/Release/bpfnet.node"
# The production dependencies only (npm's own list, no network): no compilers, test or bench tools.
while IFS= read -r dep; do
  rel=${dep#"$SRC"/}
  [[ $rel == node_modules/* ]] && put "$rel" "$L/$rel"
done < <(npm ls --omit=dev --parseable --all 2>/dev/null)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The Node the thin client falls back to is the one installed with.
printf '#!/bin/sh\n# bpfnet, installed by scripts/install.sh from %s\nBPFNET_NODE=%s exec %s/bin/bpfnet "$@"\n' "$SRC" "$NODE" "$L" > "$tmp/bpfnet"
chmod 0755 "$tmp/bpfnet"
put "$tmp/bpfnet" "$PREFIX/bin/bpfnet"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" packaging/bpfnet.service.in > "$tmp/bpfnet.service"
put "$tmp/bpfnet.service" "$PREFIX/lib/systemd/system/bpfnet.service"
if [[ -e $DESTDIR$SYSCONFDIR/bpfnet/daemon.json ]]; then
  say "keeping the existing $DESTDIR$SYSCONFDIR/bpfnet/daemon.json"
else
  put packaging/daemon.json "$SYSCONFDIR/bpfnet/daemon.json"
fi
printf '%s\n' "${entries[@]}" > "$MANIFEST"
printf 'f\t%s\n' "$L/install-manifest" >> "$MANIFEST"
say "installed $(grep -c '^f' "$MANIFEST") files; start with: systemctl daemon-reload && systemctl enable --now bpfnet"
