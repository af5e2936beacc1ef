"""Fuzz targets: libFuzzer entry points replayed as unit tests, and short libFuzzer runs.

A fuzz target is a file `<name>.cc` that defines `LLVMFuzzerTestOneInput`, beside the
parser it exercises, with a seed corpus (a directory of input files).

    load("//tools/fuzz:fuzz.bzl", "fuzz_test", "libfuzzer_test")

    fuzz_test(
        name = "jwt_fuzz",                        # jwt_fuzz.cc
        corpus_dir = "auth/testdata/fuzz/jwt_fuzz",
        corpus = "//auth/testdata:fuzz_corpus_jwt_fuzz",  # only for another package's files
        deps = [":jwt"],
    )

    libfuzzer_test(
        name = "fuzz_test",
        fuzzers = {"jwt_fuzz": "auth/testdata/fuzz/jwt_fuzz"},
        srcs = ["jwt.cc", "jwt.h", ...],          # the code under test, compiled by clang
        data = ["//auth/testdata:fuzz_corpus_jwt_fuzz"],  # likewise
        linkopts = ["-lssl", "-lcrypto"],
    )

A corpus directory inside the calling package is found by a glob; one in another package
(a testdata package with its own BUILD) is passed as a filegroup.

Defines:
  fuzz_test       a cc_test linking the entry point with //tools/fuzz:fuzz_driver, run over
                  the corpus (whole inputs, prefixes, flipped bytes) by `bazel test`
  libfuzzer_test  an sh_test (tagged "fuzz", size large) that builds every entry point in
                  `fuzzers` with clang's libFuzzer, ASan and UBSan through
                  tools/fuzz/run_fuzz.sh and fuzzes each for `seconds`
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def _corpus_files(corpus_dir):
    """The files of a corpus directory inside the calling package (else None)."""
    pkg = native.package_name()
    if not corpus_dir.startswith(pkg + "/"):
        return None
    return native.glob([corpus_dir[len(pkg) + 1:] + "/**"])

def fuzz_test(name, corpus_dir, corpus = None, deps = [], srcs = None, **kwargs):
    """A libFuzzer entry point replayed over its seed corpus as a cc_test.

    Args:
      name: the target; its entry point is `<name>.cc` unless `srcs` says otherwise.
      corpus_dir: the corpus directory relative to the workspace root.
      corpus: a filegroup label with the corpus files; needed only when corpus_dir is
        outside this package (a directory inside it is read by a glob).
      deps: the code under test.
      srcs: the entry point's sources.
      **kwargs: passed to cc_test (size, tags, ...).
    """
    data = kwargs.pop("data", [])
    if corpus:
        data = data + [corpus]
    else:
        files = _corpus_files(corpus_dir)
        if files == None:
            fail("%s: corpus_dir %s is outside this package; give its filegroup as corpus" %
                 (name, corpus_dir))
        data = data + files
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
      data: the corpus filegroups of corpus directories outside this package (those
        inside it are read by a glob), and any other files the targets read.
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
    corpora = []
    for fuzzer, corpus_dir in fuzzers.items():
        args.append("--target=%s:%s/%s.cc:%s" % (fuzzer, pkg, fuzzer, corpus_dir))
        corpora += _corpus_files(corpus_dir) or []
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
        data = srcs + entries + data + corpora + dicts.values(),
        tags = tags,
        **kwargs
    )
