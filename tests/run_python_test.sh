#!/bin/bash
# Runs a Python integration test with Debian's python3 (which has python3-grpcio and
# python3-protobuf) from the root of the Bazel runfiles tree.
set -euo pipefail
cd "${TEST_SRCDIR}/${TEST_WORKSPACE}"
export GATEWAY_ROOT="$PWD"
export PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 -u "$@"
