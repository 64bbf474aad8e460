"""im_proto_library: C++ message + gRPC libraries from .proto files.

Runs Debian's /usr/bin/protoc with /usr/bin/grpc_cpp_plugin in a genrule,
so nothing is downloaded. Import paths are relative to protos/, e.g.
`import "im/message/v1/types.proto";`, and generated headers are included
the same way: `#include "im/message/v1/types.pb.h"`.
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def im_proto_library(name, srcs, deps = [], grpc = True, visibility = None):
    """Declares `name` (cc_library) and `name + "_files"` (the .proto files).

    Args:
      name: the cc_library's name, e.g. "message_cc_proto".
      srcs: .proto files in this package.
      deps: other im_proto_library targets whose .proto files these import.
      grpc: also generate gRPC service stubs and mock stubs (for tests).
      visibility: visibility of the generated targets.
    """
    pkg = native.package_name()
    if not pkg.startswith("protos/"):
        fail("im_proto_library must be used under protos/")
    rel = pkg[len("protos/"):]

    # The .proto sources of this library and of everything it imports, so the
    # genrule's sandbox holds every file protoc opens.
    native.filegroup(
        name = name + "_files",
        srcs = srcs + [d + "_files" for d in deps],
        visibility = visibility,
    )

    outs = []
    hdrs = []
    cc_srcs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        hdrs.append(base + ".pb.h")
        cc_srcs.append(base + ".pb.cc")
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc", base + "_mock.grpc.pb.h"]
            hdrs += [base + ".grpc.pb.h", base + "_mock.grpc.pb.h"]
            cc_srcs.append(base + ".grpc.pb.cc")

    # protoc writes outputs under <out>/<import path>; $(RULEDIR) is the
    # package's output dir, so the output root is RULEDIR minus `rel`.
    out_root = "$(RULEDIR)" + "/.." * len(rel.split("/"))
    cmd = " ".join([
        _PROTOC,
        "--proto_path=protos",
        "--cpp_out=" + out_root,
    ] + ([
        "--plugin=protoc-gen-grpc=" + _GRPC_PLUGIN,
        "--grpc_out=generate_mock_code=true:" + out_root,
    ] if grpc else []) + ["$(SRCS)"])

    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        tools = [name + "_files"],
        outs = outs,
        cmd = cmd,
        message = "protoc " + pkg,
    )

    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        strip_include_prefix = "/protos",
        # Generated code is not held to the project's warning flags.
        copts = ["-Wno-error"],
        deps = deps + [
            "//third_party/system:protobuf",
        ] + (["//third_party/system:grpc"] if grpc else []),
        visibility = visibility,
    )
