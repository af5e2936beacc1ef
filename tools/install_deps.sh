#!/bin/bash
# Installs the Debian 12 packages that the build, the example and the tests need.
# Idempotent and quiet when everything is there already. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java g++ protobuf-compiler protobuf-compiler-grpc
  libprotobuf-dev libgrpc++-dev libabsl-dev libssl-dev libre2-dev libyaml-cpp-dev
  libboost-dev libnghttp2-dev libhiredis-dev
  # tests, fuzzing and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev llvm
  python3 python3-grpcio python3-protobuf python3-cryptography python3-h2 python3-yaml curl openssl redis-server
  nghttp2-client
  nginx-light wrk
  prometheus  # promtool check metrics
  systemd strace  # systemd-analyze and strace check the systemd unit (tests/service_test.py)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
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
