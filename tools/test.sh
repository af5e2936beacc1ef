#!/bin/bash
# Runs the whole test suite: unit tests, integration tests (real processes on loopback),
# fuzz targets over their seed corpora, then the unit and integration tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   tools/test.sh            everything
#   tools/test.sh --quick    skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true

tools/install_deps.sh

echo "== bazel test //... =="
bazel test //... --test_tag_filters=-benchmark

if ! $quick; then
  echo "== bazel test --config=asan (ASan + UBSan) =="
  bazel test --config=asan //... --test_tag_filters=-benchmark,-fuzz
fi
