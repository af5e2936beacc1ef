"""Fuzz targets: libFuzzer entry points replayed as unit tests, and short libFuzzer runs.

A fuzz target is a file `<name>.cc` that defines `LLVMFuzzerTestOneInput`, beside the
parser it exercises, with a seed corpus (a directory of input files).

    load("//tools/fuzz:fuzz.bzl", "fuzz_test", "libfuzzer_test")

    fuzz_test(
        name = "jwt_fuzz",                        # jwt_fuzz.cc
        corpus = "//auth/testdata:fuzz_corpus_jwt_fuzz",
        corpus_dir = "auth/testdata/fuzz/jwt_fuzz",
        deps = [":jwt"],
    )

    libfuzzer_test(
        name = "fuzz_test",
        fuzzers = {"jwt_fuzz": "auth/testdata/fuzz/jwt_fuzz"},
        srcs = ["jwt.cc", "jwt.h", ...],          # the code under test, compiled by clang
        data = ["//auth/testdata:fuzz_corpus_jwt_fuzz"],
        linkopts = ["-lssl", "-lcrypto"],
    )

Defines:
  fuzz_test       a cc_test linking the entry point with //tools/fuzz:fuzz_driver, run over
                  the corpus (whole inputs, prefixes, flipped bytes) by `bazel test`
  libfuzzer_test  an sh_test (tagged "fuzz", size large) that builds every entry point in
                  `fuzzers` with clang's libFuzzer, ASan and UBSan through
                  tools/fuzz/run_fuzz.sh and fuzzes each for `seconds`
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def fuzz_test(name, corpus, corpus_dir, deps = [], srcs = None, **kwargs):
    """A libFuzzer entry point replayed over its seed corpus as a cc_test.

    Args:
      name: the target; its entry point is `<name>.cc` unless `srcs` says otherwise.
      corpus: a filegroup label with the corpus files.
      corpus_dir: the corpus directory relative to the workspace root.
      deps: the code under test.
      srcs: the entry point's sources.
      **kwargs: passed to cc_test (size, tags, ...).
    """
    data = [corpus] + kwargs.pop("data", [])
    cc_test(
        name = name,
        srcs = srcs if srcs != None else [name + ".cc"],
        args = [corpus_dir],
        data = data,
        deps = deps + ["//tools/fuzz:fuzz_driver"],
        **kwargs
    )

def libfuzzer_test(
        name,
        fuzzers,
        srcs,
        data = [],
        copts = [],
        linkopts = [],
        dicts = {},
        seconds = 15,
        max_len = 0,
        **kwargs):
    """A short libFuzzer run of each of `fuzzers`, built with clang from source files.

    Args:
      name: the sh_test.
      fuzzers: dict from an entry point's name (`<name>.cc` in this package) to its corpus
        directory relative to the workspace root.
      srcs: labels of the code under test (.cc compiled into one library, headers needed
        to compile it; generated protobuf code included).
      data: the corpus filegroups and any other files the targets read.
      copts: extra compiler flags.
      linkopts: extra linker flags (system libraries beyond protobuf and Abseil).
      dicts: dict from an entry point's name to a libFuzzer dictionary (a label in this
        package, for example "testdata/foo.dict").
      seconds: fuzzing time per entry point.
      max_len: libFuzzer's -max_len (0: its default).
      **kwargs: passed to sh_test.
    """
    pkg = native.package_name()
    entries = [f + ".cc" for f in fuzzers]
    args = ["--seconds=%d" % seconds]
    if max_len:
        args.append("--max_len=%d" % max_len)
    args += ["--copt=" + c for c in copts]
    args += ["--linkopt=" + l for l in linkopts]
    for fuzzer, corpus_dir in fuzzers.items():
        args.append("--target=%s:%s/%s.cc:%s" % (fuzzer, pkg, fuzzer, corpus_dir))
    for fuzzer, dict_file in dicts.items():
        args.append("--dict=%s:$(rootpath %s)" % (fuzzer, dict_file))
    args += ["$(rootpaths %s)" % s for s in srcs]
    size = kwargs.pop("size", "large")
    tags = kwargs.pop("tags", []) + ["fuzz"]
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//tools/fuzz:run_fuzz.sh"],
        args = args,
        data = srcs + entries + data + dicts.values(),
        tags = tags,
        **kwargs
    )
