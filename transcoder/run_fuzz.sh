#!/bin/bash
# Builds the transcoder's fuzz targets with clang's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer, and runs each for a bounded time over its
# seed corpus (transcoder/testdata/fuzz/<target>).
#
# Usage: transcoder/run_fuzz.sh [seconds_per_target]   (default 20)
#
# Under `bazel test //transcoder:fuzz_test` the sources and the generated
# protobuf code come from the test's runfiles. Run by hand, the script builds
# the generated code with Bazel first (output base $BAZEL_OUTPUT_BASE, default
# /root/.cache/bazel_transcoder).
#
# A crash stops the script with a non-zero status and prints the saved input;
# copy it into the target's corpus directory so that it becomes a regression
# test of the cc_test of the same name.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
CXX="${CXX:-clang++}"
JOBS="${JOBS:-2}"

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  ROOT="${TEST_SRCDIR}/${TEST_WORKSPACE:-grpc_gateway}"
  GEN="${ROOT}"
  WORK="${TEST_TMPDIR}/fuzz"
else
  ROOT="$(cd "$(dirname "$0")/.." && pwd)"
  OUTPUT_BASE="${BAZEL_OUTPUT_BASE:-/root/.cache/bazel_transcoder}"
  (cd "${ROOT}" && bazel --output_base="${OUTPUT_BASE}" build --symlink_prefix=/ \
      //transcoder/testdata:bookstore_proto //proto:google_api_proto >&2)
  GEN="$(cd "${ROOT}" && bazel --output_base="${OUTPUT_BASE}" info bazel-bin 2>/dev/null)"
  WORK="$(mktemp -d /tmp/transcoder_fuzz.XXXXXX)"
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
LIBS="${LIBS} -lpthread"

CXXFLAGS="-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
  -fno-sanitize-recover=undefined -I${ROOT} -I${GEN} -I${GEN}/proto -I${ROOT}/proto -w"

LIB_SRCS="http_template path_matcher percent_encoding route_set request_translator json_codec field_text
  response_translator json_scan json_stream wire_util cached_type_resolver"
GEN_SRCS="${GEN}/transcoder/testdata/bookstore.pb.cc ${GEN}/proto/google/api/annotations.pb.cc
  ${GEN}/proto/google/api/http.pb.cc ${GEN}/proto/google/api/httpbody.pb.cc"

compile() {  # compile <source> <object>
  [[ -f "$2" ]] || ${CXX} ${CXXFLAGS} -fsanitize=fuzzer-no-link -c "$1" -o "$2"
}
export -f compile
export CXX CXXFLAGS

echo "compiling with ${CXX} into ${WORK}" >&2
{
  for s in ${LIB_SRCS}; do echo "${ROOT}/transcoder/${s}.cc ${WORK}/obj/${s}.o"; done
  for s in ${GEN_SRCS}; do echo "${s} ${WORK}/obj/$(basename "${s}" .cc).o"; done
  for t in http_template path_matcher request_translator; do
    echo "${ROOT}/transcoder/${t}_fuzz.cc ${WORK}/obj/${t}_fuzz.o"
  done
} | xargs -P "${JOBS}" -L 1 bash -c 'compile "$0" "$1"'

O="${WORK}/obj"
declare -A OBJS=(
  [http_template]="${O}/http_template.o"
  [path_matcher]="${O}/http_template.o ${O}/path_matcher.o ${O}/percent_encoding.o"
  [request_translator]="$(for s in ${LIB_SRCS}; do printf '%s ' "${O}/${s}.o"; done)
    ${O}/bookstore.pb.o ${O}/annotations.pb.o ${O}/http.pb.o ${O}/httpbody.pb.o"
)

status=0
for t in http_template path_matcher request_translator; do
  bin="${WORK}/${t}_fuzz"
  ${CXX} -fsanitize=fuzzer,address,undefined "${O}/${t}_fuzz.o" ${OBJS[$t]} ${LIBS} -o "${bin}"
  corpus="${WORK}/corpus_${t}"
  mkdir -p "${corpus}" "${WORK}/artifacts_${t}"
  echo "fuzzing ${t} for ${SECONDS_PER_TARGET}s" >&2
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "${bin}" \
      -max_total_time="${SECONDS_PER_TARGET}" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="${WORK}/artifacts_${t}/" \
      "${corpus}" "${ROOT}/transcoder/testdata/fuzz/${t}" 2> "${WORK}/${t}.log"; then
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
