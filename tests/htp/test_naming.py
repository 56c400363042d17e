"""Names of an export's inputs, outputs and free dimensions, from a stand-in graph."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelexport.htp import naming
from modelexport.htp.project import GraphNode


@dataclass
class Graph:
    inputs: list[str]
    outputs: list[str]
    shapes: dict[str, tuple[int | str | None, ...] | None]
    nodes: list[GraphNode] = field(default_factory=list)
    exporter: str = "dynamo"
    opset: int = 20


def test_nested_inputs_get_their_own_names_back() -> None:
    graph = Graph(["input_ids", "past_key_values_0_key"], ["linear"], {})
    wanted = ["input_ids", "past_key_values.0.key"]
    assert naming.input_renames(graph, wanted) == {"past_key_values_0_key":
                                                   "past_key_values.0.key"}


def test_an_input_whose_spelling_is_taken_keeps_its_name() -> None:
    graph = Graph(["a_0_b", "a.0.b"], [], {})
    assert naming.input_renames(graph, ["a.0.b"]) == {}


def test_a_cache_output_length_is_named_after_the_input_lengths_it_adds() -> None:
    graph = Graph(["past_key_values_0_key", "input_ids"], ["cat_3"], {
        "past_key_values_0_key": ("s0", 2, "s1", 16), "input_ids": ("s0", "s2"),
        "cat_3": ("s0", 2, "s1 + s2", 16)})
    axes = {"past_key_values.0.key": {0: "batch_size", 2: "past_sequence_length"},
            "input_ids": {0: "batch_size", 1: "sequence_length"}}
    renames = {"past_key_values_0_key": "past_key_values.0.key", "cat_3": "present.0.key"}
    sizes = {"past_key_values.0.key": (2, 2, 4, 16), "input_ids": (2, 3)}
    shapes = naming.named_dims(graph, axes, sizes, [None], renames)
    assert shapes["cat_3"] == ("batch_size", 2, "past_sequence_length + sequence_length", 16)
    assert shapes["past_key_values_0_key"] == ("batch_size", 2, "past_sequence_length", 16)


def test_an_expression_over_an_unknown_symbol_gets_a_stable_name() -> None:
    graph = Graph(["x"], ["y"], {"x": ("s0",), "y": ("s0 + s9",)})
    shapes = naming.named_dims(graph, {"x": {0: "batch"}}, {"x": (2,)}, [None], {})
    assert shapes["y"] == ("y_dim_0",)
