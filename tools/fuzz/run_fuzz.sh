#!/bin/bash
# Builds libFuzzer entry points with clang (libFuzzer, AddressSanitizer,
# UndefinedBehaviorSanitizer) and runs each for a bounded time, starting from its
# seed corpus. Used by the `libfuzzer_test` macro of tools/fuzz/fuzz.bzl, which
# passes the arguments; every package's fuzz targets go through this one script.
#
# Usage (paths relative to the workspace root):
#   run_fuzz.sh [--seconds=N] [--max_len=N] [--only=NAME] [--copt=FLAG]...
#               [--linkopt=FLAG]... [--dict=NAME:FILE]...
#               --target=NAME:ENTRY.cc:CORPUS_DIR... [LIBRARY_FILE]...
#
#   --seconds   fuzzing time per target (default 20); the last one given wins, so
#               `bazel run //auth:fuzz_test -- --seconds=300` runs longer by hand
#   --max_len   libFuzzer's -max_len (default: libFuzzer's own)
#   --only      run only the target NAME (may be repeated)
#   --copt      an extra compiler flag; --linkopt an extra linker flag (-lssl, ...)
#   --dict      a libFuzzer dictionary (-dict=) for the target NAME
#   --target    an entry point (LLVMFuzzerTestOneInput) and its seed corpus
#   LIBRARY_FILE  the code under test: every .cc is compiled into one static
#               library that each target links against; other files (headers) are
#               only there to be found by the compiler.
#
# Include paths: the workspace root and proto/ (generated protobuf code). Protobuf
# and Abseil are always linked.
#
# Under `bazel test` and `bazel run` the files come from the test's runfiles and
# the work directory (objects, grown corpora, crash artifacts; its path is printed)
# is the test's TEST_TMPDIR, which `bazel run` leaves in place. Run directly, the
# files come from the current directory (the workspace root; generated code must
# then exist there) and the work directory is a fresh one under /tmp.
#
# A crash stops the script with a non-zero status and lists the saved input; copy
# it into the target's corpus directory so that it becomes a regression test of
# the cc_test of the same name.
set -euo pipefail

SECONDS_PER_TARGET=20
MAX_LEN=""
CXX="${CXX:-clang++}"
AR="${AR:-ar}"
JOBS="${JOBS:-2}"
EXTRA_COPTS=""
EXTRA_LINKOPTS=""
TARGETS=()
ONLY=()
declare -A DICTS=()
LIB_SRCS=()

for arg in "$@"; do
  case "${arg}" in
    --seconds=*) SECONDS_PER_TARGET="${arg#*=}" ;;
    --max_len=*) MAX_LEN="${arg#*=}" ;;
    --only=*) ONLY+=("${arg#*=}") ;;
    --copt=*) EXTRA_COPTS="${EXTRA_COPTS} ${arg#*=}" ;;
    --linkopt=*) EXTRA_LINKOPTS="${EXTRA_LINKOPTS} ${arg#*=}" ;;
    --target=*) TARGETS+=("${arg#*=}") ;;
    --dict=*) d="${arg#*=}"; DICTS["${d%%:*}"]="${d#*:}" ;;
    --*) echo "run_fuzz.sh: unknown flag ${arg}" >&2; exit 2 ;;
    *.cc) LIB_SRCS+=("${arg}") ;;
    *) ;;  # headers and other data
  esac
done
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  echo "run_fuzz.sh: no --target given" >&2
  exit 2
fi

if [[ -n "${TEST_SRCDIR:-}" ]]; then
  ROOT="${TEST_SRCDIR}/${TEST_WORKSPACE:-grpc_gateway}"
  WORK="${TEST_TMPDIR}/fuzz"
else
  ROOT="$(pwd)"
  WORK="$(mktemp -d /tmp/fuzz.XXXXXX)"
fi
rm -rf "${WORK}/obj"  # a work directory kept from an earlier run holds stale objects
mkdir -p "${WORK}/obj"

ABSL_LIBS="status statusor strings strings_internal str_format_internal cord cord_internal
  cordz_info cordz_handle cordz_functions cordz_sample_token synchronization
  graphcycles_internal time time_zone civil_time int128 hash city low_level_hash
  raw_hash_set hashtablez_sampler exponential_biased base spinlock_wait
  raw_logging_internal log_severity malloc_internal throw_delegate bad_optional_access
  bad_variant_access stacktrace symbolize debugging_internal demangle_internal strerror"
LIBS="${EXTRA_LINKOPTS} -lprotobuf"
for lib in ${ABSL_LIBS}; do LIBS="${LIBS} -labsl_${lib}"; done
LIBS="${LIBS} -lpthread"

CXXFLAGS="-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
  -fno-sanitize-recover=undefined -I${ROOT} -I${ROOT}/proto -w ${EXTRA_COPTS}"

compile() {  # compile <source> <object>
  [[ -f "$2" ]] || ${CXX} ${CXXFLAGS} -fsanitize=fuzzer-no-link -c "$1" -o "$2"
}
export -f compile
export CXX CXXFLAGS

selected() {  # selected <name>: whether --only lets the target run
  [[ ${#ONLY[@]} -eq 0 ]] && return 0
  local o
  for o in "${ONLY[@]}"; do [[ "${o}" == "$1" ]] && return 0; done
  return 1
}

# Object names keep the source's path, so that equal base names cannot collide.
object_of() { echo "${WORK}/obj/$(echo "$1" | tr '/' '_' | sed 's/\.cc$//').o"; }

echo "compiling with ${CXX} into ${WORK}" >&2
{
  for s in "${LIB_SRCS[@]+"${LIB_SRCS[@]}"}"; do echo "${ROOT}/${s} $(object_of "${s}")"; done
  for t in "${TARGETS[@]}"; do
    IFS=: read -r name entry corpus <<< "${t}"
    if selected "${name}"; then echo "${ROOT}/${entry} $(object_of "${entry}")"; fi
  done
} | xargs -r -P "${JOBS}" -L 1 bash -c 'compile "$0" "$1"'

LIB="${WORK}/libundertest.a"
rm -f "${LIB}"
LIB_OBJS=()
for s in "${LIB_SRCS[@]+"${LIB_SRCS[@]}"}"; do LIB_OBJS+=("$(object_of "${s}")"); done
if [[ ${#LIB_OBJS[@]} -gt 0 ]]; then
  ${AR} rcs "${LIB}" "${LIB_OBJS[@]}"
else
  ${AR} rcs "${LIB}"
fi

status=0
for t in "${TARGETS[@]}"; do
  IFS=: read -r name entry corpus <<< "${t}"
  selected "${name}" || continue
  bin="${WORK}/${name}"
  ${CXX} -fsanitize=fuzzer,address,undefined "$(object_of "${entry}")" "${LIB}" ${LIBS} \
    -o "${bin}"
  grown="${WORK}/corpus_${name}"
  mkdir -p "${grown}" "${WORK}/artifacts_${name}"
  echo "fuzzing ${name} for ${SECONDS_PER_TARGET}s" >&2
  flags=(-max_total_time="${SECONDS_PER_TARGET}" -rss_limit_mb=2048 -timeout=10
         -print_final_stats=1 -artifact_prefix="${WORK}/artifacts_${name}/")
  [[ -n "${MAX_LEN}" ]] && flags+=(-max_len="${MAX_LEN}")
  [[ -n "${DICTS[${name}]:-}" ]] && flags+=(-dict="${ROOT}/${DICTS[${name}]}")
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "${bin}" "${flags[@]}" \
      "${grown}" "${ROOT}/${corpus}" 2> "${WORK}/${name}.log"; then
    echo "FAILED: ${name}; log: ${WORK}/${name}.log" >&2
    tail -60 "${WORK}/${name}.log" >&2
    ls -l "${WORK}/artifacts_${name}/" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|cov:" \
      "${WORK}/${name}.log" | tail -4 >&2
  fi
done
exit "${status}"
