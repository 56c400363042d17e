"""A profile as trace events and collapsed stacks, on a profile built by hand. Pure; the
real MiniLM in speedscope's own importer is tests/inference/test_viewers.py."""

from __future__ import annotations

from collections import defaultdict

from modelexport.inference.records import ModuleTime, NodeTime, Profile, Settings
from modelexport.publish import flame

# path -> (class, own kernels: (name, op, ms)); the layers' times chosen so that decimal
# microseconds would not add up exactly in binary (0.1 + 0.2 != 0.3).
MODULES = {
    "": ("Net", [("mask", "Where", 0.0001)]),
    "encoder": ("Encoder", []),
    "encoder.layer": ("ModuleList", []),
    "encoder.layer.0": ("Layer", [("mm0", "MatMul", 0.0001), ("add0", "Add", 0.0002)]),
    "encoder.layer.1": ("Layer", [("mm1", "MatMul", 0.0003)]),
    "encoder.layer.10": ("Layer", [("mm10", "MatMul", 0.0007)]),
    "encoder.layer.2": ("Layer", [("mm2", "MatMul", 0.0002)]),
    "head;x y\nz": ("Odd", [("fc", "Gemm", 1.5)]),  # a name PyTorch takes, the formats do not
}


def profile() -> Profile:
    own = {path: sum(ms for _, _, ms in kernels) for path, (_, kernels) in MODULES.items()}
    inclusive = {path: sum(ms for other, ms in own.items()
                           if other == path or other.startswith(f"{path}.") or not path)
                 for path in MODULES}
    modules = tuple(ModuleTime(path, cls, own[path], inclusive[path], None, None, 1, ())
                    for path, (cls, _) in MODULES.items())
    nodes = tuple(NodeTime(name, op, path or None, "node", (name,), ms, 1)
                  for path, (_, kernels) in MODULES.items() for name, op, ms in kernels)
    total = inclusive[""]
    return Profile("m.onnx", Settings(5, 1, 1, "all"), (total,), (total,), 1.0, modules, nodes)


def test_frames_join_an_index_to_its_container() -> None:
    assert flame.frames("encoder.layer.0.attention") == ("encoder", "layer.0", "attention")
    assert flame.frames("blocks.0.1") == ("blocks.0.1",)
    assert flame.frames("") == ()


def test_each_module_is_one_slice_holding_its_kernels_and_children_exactly() -> None:
    events = [e for e in flame.trace(profile())["traceEvents"] if e["ph"] == "X"]
    modules = {e["args"]["module"]: e for e in events if e["cat"] == "module"}
    found = profile()
    for module in found.modules:
        if module.inclusive_ms and module.path != "encoder.layer":  # its layers are frames
            shown = modules[module.path or flame.ROOT]
            assert abs(shown["dur"] / 1000 - module.inclusive_ms) < 1e-6, module.path
    # The container of the layers has no time of its own: no slice; its layers are the
    # encoder's, in natural order, each inside the encoder's slice to the bit.
    assert "encoder.layer" not in modules
    layers = [e["args"]["module"] for e in events if e["name"].startswith("layer.")]
    assert layers == ["encoder.layer.0", "encoder.layer.1", "encoder.layer.2",
                      "encoder.layer.10"]
    encoder = modules["encoder"]
    last = modules["encoder.layer.10"]
    assert last["ts"] + last["dur"] == encoder["ts"] + encoder["dur"]
    starts = [modules[f"encoder.layer.{i}"]["ts"] for i in (0, 1, 2, 10)]
    ends = [modules[f"encoder.layer.{i}"]["ts"] + modules[f"encoder.layer.{i}"]["dur"]
            for i in (0, 1, 2)]
    assert starts[1:] == ends  # each layer begins where the one before ended, exactly
    kernel = next(e for e in events if e["args"].get("node") == "mm1")
    assert kernel["cat"] == "kernel" and kernel["name"] == "MatMul"
    assert kernel["args"] == {"node": "mm1", "op_type": "MatMul", "shapes": "", "calls": 1,
                              "absorbed": []}


def test_collapsed_stacks_add_up_and_a_name_cannot_break_a_line() -> None:
    lines = flame.collapsed(profile()).splitlines()
    assert "(root);encoder;layer.1;MatMul 300" in lines
    assert "(root);head:x_y_z;Gemm 1500000" in lines
    under: dict[str, int] = defaultdict(int)
    for line in lines:
        stack, _, weight = line.rpartition(" ")
        assert stack.count(" ") == 0
        under[stack.split(";")[1] if ";" in stack else stack] += int(weight)
    assert under["encoder"] == 100 + 200 + 300 + 700 + 200
