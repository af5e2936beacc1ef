"""Compiles .proto files with Debian's protoc and grpc_cpp_plugin, offline.

gateway_proto_library(
    name = "bookstore_proto",
    srcs = ["bookstore.proto"],
    deps = ["//proto:google_api_proto"],   # other gateway_proto_library targets
    grpc = True,                           # also emit *.grpc.pb.{h,cc}
    descriptor_set = True,                 # also emit <name>.pb (--include_imports)
    proto_root = "",                       # import root relative to the workspace
)

Defines:
  <name>          cc_library with the generated C++ code (deps' libraries included)
  <name>_files    filegroup with the .proto sources of this target and of its deps
  <name>.pb       (descriptor_set = True) a FileDescriptorSet with all imports

Import paths: files under //proto are imported relative to proto/ (for example
"google/api/http.proto"); every other file relative to the workspace root (for example
"examples/bookstore/bookstore.proto"). `proto_root` says which of the two a target uses.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

_PROTOC = "/usr/bin/protoc"
_GRPC_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def _strip(src, suffix):
    return src[:-len(suffix)]

def gateway_proto_library(
        name,
        srcs,
        deps = [],
        grpc = False,
        descriptor_set = False,
        proto_root = "",
        visibility = None,
        testonly = False):
    pkg = native.package_name()
    if proto_root and not (pkg == proto_root or pkg.startswith(proto_root + "/")):
        fail("proto_root %s must contain package %s" % (proto_root, pkg))

    native.filegroup(
        name = name + "_files",
        srcs = srcs + [d + "_files" for d in deps],
        visibility = visibility,
        testonly = testonly,
    )

    outs = []
    for s in srcs:
        base = _strip(s, ".proto")
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    out_root = "$(GENDIR)" + ("/" + proto_root if proto_root else "")
    flags = "-Iproto -I. -I/usr/include --cpp_out=%s" % out_root
    if grpc:
        flags += " --grpc_out=%s --plugin=protoc-gen-grpc=%s" % (out_root, _GRPC_PLUGIN)

    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_files" for d in deps],
        outs = outs,
        cmd = "%s %s %s" % (
            _PROTOC,
            flags,
            " ".join(["$(location %s)" % s for s in srcs]),
        ),
        testonly = testonly,
        message = "protoc " + name,
    )

    cc_deps = ["//third_party:protobuf"] + deps
    if grpc:
        cc_deps.append("//third_party:grpc")

    includes = []
    if proto_root:
        # Make "google/api/http.pb.h" resolvable for files rooted at proto/.
        rel = pkg[len(proto_root):].lstrip("/")
        includes = ["/".join([".."] * len(rel.split("/")))] if rel else ["."]

    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = includes,
        deps = cc_deps,
        visibility = visibility,
        testonly = testonly,
    )

    if descriptor_set:
        native.genrule(
            name = name + "_descriptor_set",
            srcs = srcs + [d + "_files" for d in deps],
            outs = [name + ".pb"],
            cmd = "%s -Iproto -I. -I/usr/include --include_imports --include_source_info --descriptor_set_out=$@ %s" % (
                _PROTOC,
                " ".join(["$(location %s)" % s for s in srcs]),
            ),
            testonly = testonly,
            visibility = visibility,
            message = "protoc descriptor set " + name,
        )
