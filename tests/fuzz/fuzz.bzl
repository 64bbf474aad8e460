"""im_fuzz_target: one libFuzzer target and the test replaying its corpus."""

def im_fuzz_target(name, srcs, deps = []):
    """Defines `name` and `name + "_corpus_test"`.

    `name` is a libFuzzer binary under --config=fuzz (scripts/fuzz.sh) and a
    corpus replayer otherwise. `name + "_corpus_test"` replays
    tests/fuzz/corpus/<name>/ once, as part of `bazel test //...`.

    Args:
      name: target name; also the corpus directory's name.
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: their dependencies.
    """
    native.cc_library(
        name = name + "_input",
        testonly = True,
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [":" + name + "_input"] + select({
            ":libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "medium",
        deps = [":" + name + "_input", ":replay_main"],
        data = native.glob(["corpus/" + name + "/*"]),
        args = ["tests/fuzz/corpus/" + name],
    )
