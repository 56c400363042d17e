"""ONNX Runtime's trace events read and split into runs, as ORT writes them. Pure."""

from __future__ import annotations

import json

import pytest

from modelexport.inference.events import (
    KernelStats,
    kernel_stats,
    runs_of,
    temporaries,
    trace_events,
)


def made(runs: list[dict[str, float]], gap: float = 1000.0) -> list[dict]:
    """A Chrome trace as ORT writes it: a model_run event per run, kernels inside."""
    trace: list[dict] = [{"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 5}]
    ts = 10.0
    for kernels in runs:
        start = ts
        for name, dur in kernels.items():
            trace.append({"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur})
            trace.append({"cat": "Node", "name": f"{name}_fence_before", "ts": ts, "dur": 0})
            ts += dur
        trace.append({"cat": "Session", "name": "model_run", "ts": start, "dur": ts - start + 1})
        ts += gap
    return trace


def test_runs_drop_the_warm_up_and_count_each_kernel_in_its_run() -> None:
    trace = made([{"a": 900.0}, {"a": 100.0, "b": 50.0}, {"a": 110.0}])
    runs = runs_of(trace, 1, 2)
    assert runs.kernels == ({"a": (100.0, 1), "b": (50.0, 1)}, {"a": (110.0, 1)})
    assert runs.latency_us == (151.0, 111.0)
    # ORT's profiler stops recording at a million events (a loop can make that many in a
    # few runs): the last run is missing, and averaging the rest would hide it.
    with pytest.raises(ValueError, match="it holds 2 of the 3 runs"):
        runs_of(trace[:-1], 1, 2)


# As onnxruntime writes it: one event a line, ``args`` last.
ORT_TRACE = "\n".join([
    "[",
    '{"cat" : "Session","pid" :7,"tid" :7,"dur" :5,"ts" :1,"ph" : "X",'
    '"name" :"model_loading_uri","args" : {}},',
    '{"cat" : "Node","pid" :7,"tid" :7,"dur" :61,"ts" :20,"ph" : "X",'
    '"name" :"a\\"b,\\"args\\" :{_kernel_time","args" : {"op_name" : "Relu",'
    '"thread_scheduling_stats" : {"main_thread": {"core": -1}}}},',
    '{"cat" : "Session","pid" :7,"tid" :7,"dur" :87,"ts" :10,"ph" : "X",'
    '"name" :"model_run","args" : {}}',
    "]",
])


def test_the_trace_is_read_without_its_statistics() -> None:
    # A name holding the marker (its quotes escaped, as ORT escapes them) does not cut the
    # event short.
    events = trace_events(ORT_TRACE)
    assert [e["name"] for e in events] == ["model_loading_uri", 'a"b,"args" :{_kernel_time',
                                           "model_run"]
    assert events[1] == {"cat": "Node", "pid": 7, "tid": 7, "dur": 61, "ts": 20, "ph": "X",
                         "name": 'a"b,"args" :{_kernel_time'}
    # Laid out otherwise (one line, args first): parsed whole.
    whole = json.dumps([{"args": {"x": 1}, "name": "model_run", "ts": 1, "dur": 2}])
    assert trace_events(whole) == json.loads(whole)
    for broken in ('[{"name": "model_run", "ts": 1', "[1, 2]", ""):
        with pytest.raises(ValueError):
            trace_events(broken)


def test_each_kernels_shapes_and_bytes_are_read_from_its_first_run() -> None:
    def kernel(name: str, inputs: str, outputs: str) -> str:
        return (f'{{"cat" : "Node","dur" :3,"ts" :1,"ph" : "X","name" :"{name}_kernel_time",'
                f'"args" : {{"input_type_shape" : {inputs},"output_type_shape" : {outputs},'
                f'"output_size" : "12288","mem_in_use_peak" : "43106905"}}}},')

    text = "\n".join([
        "[",
        kernel("mm", '[{"float":[1,8,384]},{"float":[384,384]}]', '[{"float":[1,8,384]}]'),
        kernel("odd", '"not a list"', '[{"int64":[]}]'),
        '{"cat" : "Session","dur" :9,"ts" :0,"ph" : "X","name" :"model_run","args" : {}},',
        kernel("late", '[{"float":[2]}]', '[{"float":[2]}]'),  # a later run: not read
        "]",
    ])
    found = kernel_stats(text)
    assert set(found) == {"mm", "odd"}
    assert found["mm"] == KernelStats("float[1,8,384] float[384,384] -> float[1,8,384]",
                                      12288, 43106905)
    assert found["odd"].shapes == "? -> int64[]"


def test_each_kernels_temporaries_are_read_from_onnxruntimes_node_statistics() -> None:
    text = "\n".join([
        "#name,input_sizes,initializers_sizes,total_dynamic_sizes,total_temp_allocations",
        "BiasGelu_token_10_2345269230000997358,792576,0,0,786432",
        "node_Where_126_3609568519052428479,8,0,65536,131072",
        "a,b_17,0,0,0,64",  # a comma in the name
        "Gemm_3,0,0,0,12",  # the kernel's name as written
        "Unknown_55,0,0,0,9",  # a row of a kernel the profile did not run
        "broken,0,0",  # too few cells
        "also_broken_1,0,0,0,lots",
    ])
    kernels = {"BiasGelu_token_10", "node_Where_126", "a,b", "Gemm_3", "also_broken"}
    assert temporaries(text, kernels) == {"BiasGelu_token_10": 786432,
                                          "node_Where_126": 131072, "a,b": 64, "Gemm_3": 12}
