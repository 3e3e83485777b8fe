# Shared by the scripts: installing what is missing, building, and the environment mpirun needs.
# Source it: . "$(dirname "$0")/lib.sh"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The Debian packages dpt builds and runs with.
DPT_PACKAGES=(pkg-config libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev librsvg2-bin)

say() { printf '\n==> %s\n' "$*" >&2; }

# `dpt --version` names the commit dpt was built from: the linker writes "dpt", a byte that says whether the tree had
# uncommitted changes, and the commit's 20 bytes as the binary's GNU build id (BuildInfo reads it back), so it
# travels with the binary to nodes without the source. A plain `swift build` records none, and says so.
build_id_flags() {
  local commit changes=00
  commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null) || return 0
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || changes=01
  echo "-Xlinker --build-id=0x647074${changes}${commit}"
}

# ensure_packages PKG...: apt-get installs those not yet installed (nothing when all are there).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: missing Debian packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# mpirun refuses to start as root unless told it may; one BLAS thread per rank (one rank per core).
mpi_environment() {
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  export OPENBLAS_NUM_THREADS=1
}

# build CONFIG [ARGS...]: swift build, printing the last line (the whole log's end when it fails).
build() {
  say "swift build -c $*"
  local log
  log=$(mktemp)
  # shellcheck disable=SC2046 # the flags are words
  if ! swift build -c "$@" $(build_id_flags) >"$log" 2>&1; then
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  tail -1 "$log" >&2
  rm -f "$log"
}

DPT="$ROOT/.build/release/dpt"

# The binary a node without the Swift toolchain runs: Swift's runtime and Foundation linked in, so it needs only
# libc, OpenMPI, OpenBLAS and zlib (ldd names nothing under the toolchain). Its own build folder, so the test
# build in .build is not relinked.
STATIC_BUILD="$ROOT/.build-static"
build_static() {
  build release --static-swift-stdlib --scratch-path "$STATIC_BUILD" --product dpt
}

# install_tree DEST PREFIX: dpt's files as they go under PREFIX, written below DEST (DEST is empty for an install, a
# package's staging folder for scripts/package): bin/dpt, a man page for dpt and one for each subcommand (dpt.train)
# (swift-argument-parser's generate-manual) and bash, zsh and fish completions (the binary's own
# --generate-completion-script). Expects build_static to have run.
install_tree() {
  local dest=$1 prefix=$2 bin="$STATIC_BUILD/release/dpt" root
  root="$dest$prefix"
  mkdir -p "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
    "$root/share/zsh/vendor-completions" "$root/share/fish/vendor_completions.d" || {
    echo "error: cannot create folders under $root (run as root for /usr/local, or give a PREFIX you own)" >&2; exit 1; }
  # The man pages: swift-argument-parser's generate-manual (a small debug build beside dpt's) reads the binary's
  # --experimental-dump-help. (Its package plugin would link dpt again in this folder, without the static runtime.)
  local pages="$STATIC_BUILD/manual"
  swift build --scratch-path "$STATIC_BUILD" --product generate-manual >/dev/null
  rm -rf "$pages" && mkdir -p "$pages"
  "$STATIC_BUILD/debug/generate-manual" "$bin" --multi-page --output-directory "$pages" >/dev/null
  ! ldd "$bin" | grep -q "libswiftCore" || { echo "error: $bin links Swift's runtime dynamically" >&2; exit 1; }
  install -m 0644 "$pages"/*.1 "$root/share/man/man1/"
  "$bin" --generate-completion-script bash >"$root/share/bash-completion/completions/dpt"
  "$bin" --generate-completion-script zsh >"$root/share/zsh/vendor-completions/_dpt"
  "$bin" --generate-completion-script fish >"$root/share/fish/vendor_completions.d/dpt.fish"
  # The binary last, through a temporary name, so a running dpt is never overwritten in place.
  # Stripped of its symbol tables (91 MB -> 64 MB); the build id, which names the commit, stays.
  install -m 0755 -s "$bin" "$root/bin/dpt.tmp-$$" && mv -f "$root/bin/dpt.tmp-$$" "$root/bin/dpt"
}
