# Shared by the scripts: installing what is missing, building, and the environment mpirun needs.
# Source it: . "$(dirname "$0")/lib.sh"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The Debian packages dpt builds and runs with.
DPT_PACKAGES=(pkg-config libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev librsvg2-bin)

say() { printf '\n==> %s\n' "$*" >&2; }

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
  if ! swift build -c "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  tail -1 "$log" >&2
  rm -f "$log"
}

DPT="$ROOT/.build/release/dpt"
