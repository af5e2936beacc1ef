#!/bin/bash
# Builds the auth fuzz targets (jwt_fuzz, jwks_fuzz, api_keys_fuzz) with
# clang's libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, and runs
# each for a bounded time starting from its seed corpus
# (auth/testdata/fuzz/<target>).
#
# Usage: auth/run_fuzz.sh [seconds_per_target]   (default 20)
#
# Under `bazel test //auth:fuzz_test` the sources come from the test's
# runfiles; run by hand, from the source tree. Nothing here needs Bazel: the
# library sources are compiled directly against Debian's protobuf, Abseil and
# OpenSSL.
#
# A crash stops the script with a non-zero status and lists the saved input;
# copy it into the target's corpus directory so that it becomes a regression
# test of the cc_test of the same name.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
CXX="${CXX:-clang++}"
JOBS="${JOBS:-2}"

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  ROOT="${TEST_SRCDIR}/${TEST_WORKSPACE:-grpc_gateway}"
  WORK="${TEST_TMPDIR}/fuzz"
else
  ROOT="$(cd "$(dirname "$0")/.." && pwd)"
  WORK="$(mktemp -d /tmp/auth_fuzz.XXXXXX)"
fi
mkdir -p "${WORK}/obj"

ABSL_LIBS="status statusor strings strings_internal str_format_internal cord cord_internal
  cordz_info cordz_handle cordz_functions cordz_sample_token synchronization
  graphcycles_internal time time_zone civil_time int128 hash city low_level_hash
  raw_hash_set hashtablez_sampler exponential_biased base spinlock_wait
  raw_logging_internal log_severity malloc_internal throw_delegate bad_optional_access
  bad_variant_access stacktrace symbolize debugging_internal demangle_internal strerror"
LIBS="-lprotobuf"
for lib in ${ABSL_LIBS}; do LIBS="${LIBS} -labsl_${lib}"; done
LIBS="${LIBS} -lssl -lcrypto -lpthread"

CXXFLAGS="-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
  -fno-sanitize-recover=undefined -I${ROOT} -w"

LIB_SRCS="jose_util jwa jwks token_cache jwt jwt_requirement api_keys"
TARGETS="jwt_fuzz jwks_fuzz api_keys_fuzz"

compile() {  # compile <source> <object>
  [[ -f "$2" ]] || ${CXX} ${CXXFLAGS} -fsanitize=fuzzer-no-link -c "$1" -o "$2"
}
export -f compile
export CXX CXXFLAGS

echo "compiling with ${CXX} into ${WORK}" >&2
for s in ${LIB_SRCS} ${TARGETS}; do
  echo "${ROOT}/auth/${s}.cc ${WORK}/obj/${s}.o"
done | xargs -P "${JOBS}" -L 1 bash -c 'compile "$0" "$1"'

LIB_OBJS=""
for s in ${LIB_SRCS}; do LIB_OBJS="${LIB_OBJS} ${WORK}/obj/${s}.o"; done

status=0
for t in ${TARGETS}; do
  bin="${WORK}/${t}"
  ${CXX} -fsanitize=fuzzer,address,undefined "${WORK}/obj/${t}.o" ${LIB_OBJS} ${LIBS} -o "${bin}"
  corpus="${WORK}/corpus_${t}"
  mkdir -p "${corpus}" "${WORK}/artifacts_${t}"
  echo "fuzzing ${t} for ${SECONDS_PER_TARGET}s" >&2
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "${bin}" \
      -max_total_time="${SECONDS_PER_TARGET}" -rss_limit_mb=2048 -timeout=10 -max_len=20000 \
      -print_final_stats=1 -artifact_prefix="${WORK}/artifacts_${t}/" \
      "${corpus}" "${ROOT}/auth/testdata/fuzz/${t}" 2> "${WORK}/${t}.log"; then
    echo "FAILED: ${t}; log: ${WORK}/${t}.log" >&2
    tail -60 "${WORK}/${t}.log" >&2
    ls -l "${WORK}/artifacts_${t}/" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "${WORK}/${t}.log" \
      | tail -3 >&2
  fi
done
exit "${status}"
