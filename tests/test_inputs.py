"""Dummy inputs from signatures and configs, and explicit specs."""

from __future__ import annotations

import pytest
import torch

from modelexport import inputs
from modelexport.errors import UsageError
from modelexport.inputs import InputSpec

pytestmark = pytest.mark.export


class TextConfig:
    vocab_size = 50
    max_position_embeddings = 8


class Text(torch.nn.Module):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None, use_cache=None):
        return input_ids


class Vision(torch.nn.Module):
    def forward(self, pixel_values, attention_mask=None):
        return pixel_values


class Custom(torch.nn.Module):
    def forward(self, features, scale=1.0):
        return features * scale


def test_text_inputs_follow_the_config() -> None:
    specs = {s.name: s for s in inputs.default_specs(Text(), TextConfig())}
    assert list(specs) == ["input_ids", "attention_mask", "token_type_ids"]
    assert specs["input_ids"].shape == (1, 8)  # capped by max_position_embeddings
    tensors = inputs.make(list(specs.values()))
    assert int(tensors["input_ids"].max()) < 50
    assert tensors["attention_mask"].eq(1).all()
    assert tensors["token_type_ids"].eq(0).all()


def test_vision_model_gets_an_image_and_no_text_mask() -> None:
    class Config:
        image_size = 32
        num_channels = 1

    specs = inputs.default_specs(Vision(), Config())
    assert [(s.name, s.shape) for s in specs] == [("pixel_values", (1, 1, 32, 32))]


def test_explicit_spec_overrides_and_reshapes_companions() -> None:
    given = inputs.parse_spec("input_ids=2x5:int64")
    specs = {s.name: s for s in inputs.default_specs(Text(), TextConfig(), [given])}
    assert specs["input_ids"].shape == (2, 5)
    assert (specs["input_ids"].low, specs["input_ids"].high) == (0, 50)  # the rule's range
    assert specs["attention_mask"].shape == (2, 5)


def test_required_input_without_rule_names_itself() -> None:
    with pytest.raises(UsageError, match="'features'"):
        inputs.default_specs(Custom(), None)
    specs = inputs.default_specs(Custom(), None, [inputs.parse_spec("features=3x4:float32:-2..2")])
    tensor = inputs.make(specs)["features"]
    assert tensor.shape == (3, 4) and tensor.min() >= -2 and tensor.max() <= 2


@pytest.mark.parametrize(
    "text", ["input_ids", "input_ids=1xA", "x=2:complex64", "x=2:float32:3..1"]
)
def test_bad_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        inputs.parse_spec(text)


def test_inputs_that_forward_does_not_take_are_rejected() -> None:
    with pytest.raises(UsageError, match="pixel_values"):
        inputs.default_specs(Text(), TextConfig(), [InputSpec("pixel_values", (1, 3, 2, 2))])


def test_same_seed_same_tensors() -> None:
    specs = inputs.default_specs(Text(), TextConfig())
    assert torch.equal(inputs.make(specs, 7)["input_ids"], inputs.make(specs, 7)["input_ids"])
    assert not torch.equal(inputs.make(specs, 7)["input_ids"], inputs.make(specs, 8)["input_ids"])


def test_nested_names_become_the_arguments_a_forward_takes() -> None:
    flat = {"input_ids": 1, "past_key_values.1.value": 4, "past_key_values.0.key": 2,
            "past_key_values.0.value": 3, "past_key_values.1.key": 5}
    assert inputs.nested(flat) == {
        "input_ids": 1,
        "past_key_values": [{"key": 2, "value": 3}, {"value": 4, "key": 5}],
    }


def test_names_without_an_entry_index_stay_flat() -> None:
    assert inputs.nested({"a.b": 1, "a": 2}) == {"a.b": 1, "a": 2}
