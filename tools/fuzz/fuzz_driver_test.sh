#!/bin/bash
# Checks fuzz_driver.cc through a fuzz_test whose entry point aborts on inputs that start
# with "abort": every corpus file runs whole, as prefixes and with flipped bytes; a
# missing path or an empty corpus fails; an aborting input fails the test.
set -uo pipefail

DRIVER="$1"
DIR="$(dirname "$2")"  # tools/fuzz/testdata
fail() { echo "FAIL: $*" >&2; exit 1; }

# ten_bytes (10 bytes): whole + 10 prefixes + 10 flipped; empty: whole only.
out="$("${DRIVER}" "${DIR}/corpus")" || fail "the corpus did not pass: ${out}"
[[ "${out}" == "ran 22 inputs from 2 files" ]] || fail "unexpected summary: ${out}"

"${DRIVER}" "${DIR}/no_such_dir" 2>/dev/null && fail "a missing path passed"
mkdir -p "${TEST_TMPDIR}/empty_dir"
"${DRIVER}" "${TEST_TMPDIR}/empty_dir" 2>/dev/null && fail "an empty corpus passed"
"${DRIVER}" "${DIR}/crasher" 2>/dev/null && fail "an aborting input passed"
echo "PASS"
