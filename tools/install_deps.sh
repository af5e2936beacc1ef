#!/bin/bash
# Installs the Debian 12 packages that the build, the example and the tests need.
# Idempotent and quiet when everything is there already. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java g++ protobuf-compiler protobuf-compiler-grpc
  libprotobuf-dev libgrpc++-dev libabsl-dev libssl-dev libre2-dev libyaml-cpp-dev
  libboost-dev libnghttp2-dev libhiredis-dev zlib1g-dev
  libgoogle-perftools-dev  # tcmalloc, the allocator of gatewayd
  # tests, fuzzing and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev llvm
  python3 python3-grpcio python3-protobuf python3-cryptography python3-h2 python3-yaml curl openssl redis-server
  nghttp2-client
  nginx-light wrk
  prometheus  # promtool check metrics
  systemd strace  # systemd-analyze and strace check the systemd unit (tests/service_test.py)
  nodejs  # node (and npm) for the OpenAPI validator and the Connect clients in tools/npm
  python3-websockets  # WebSocket client of the stream tests
  chromium chromium-driver python3-selenium  # the browser test (tests/browser_test.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# Node packages of the tests (pinned in tools/npm/package-lock.json), installed into
# tools/npm/node_modules; needs npm, which Debian ships apart from nodejs.
install_npm_packages() {
  local npm_dir
  npm_dir="$(cd "$(dirname "$0")" && pwd)/npm"
  if ! command -v npm >/dev/null; then
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  # node_modules/.installed-lock: the lock file of the last install.
  if ! cmp -s "$npm_dir/package-lock.json" "$npm_dir/node_modules/.installed-lock"; then
    (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null &&
      cp package-lock.json node_modules/.installed-lock)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  install_npm_packages
  exit 0
fi
echo "install_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services from packages it installs; the tests start their own.
for svc in redis-server nginx prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
install_npm_packages
