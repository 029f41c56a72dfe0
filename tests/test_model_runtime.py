"""The runtime: devices, the dtype of each part, and a precision label read back from what runs."""

import itertools

import pytest
import torch

from audiox_core.model.runtime import (
    DTYPE_NAMES,
    DtypePlan,
    dtype_plan,
    load_model,
    place,
    precision_label,
    resolve_device,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_every_part_runs_in_fp32_on_the_cpu(tiny_model) -> None:
    assert set(tiny_model.part_dtypes.values()) == {torch.float32}
    assert tiny_model.precision == "fp32"


def test_cuda_plan_reduces_the_dit_and_t5_only() -> None:
    assert dtype_plan(CUDA, "t5") == DtypePlan(
        dit=torch.bfloat16, vae=torch.float32, cond=torch.float32, text=torch.float16
    )
    assert dtype_plan(CUDA, "byte-t5").text == torch.float32
    assert dtype_plan(CPU, "t5") == DtypePlan(torch.float32, torch.float32, torch.float32, torch.float32)


def test_label_of_a_model_placed_by_the_cuda_plan_names_each_part() -> None:
    model = load_model("tiny", device="cpu")  # its own copy: the parts are cast in place
    place(model.network, model.text_encoder, CPU, dtype_plan(CUDA, "t5"))
    assert model.precision == "dit=bf16 vae=fp32 cond=fp32 text=fp16"
    dit = model.network.model.model
    assert dit.timestep_features.weight.dtype == torch.float32  # the timestep path stays fp32


def test_label_is_one_name_when_all_parts_agree_and_fits_the_column() -> None:
    assert precision_label(dict.fromkeys(("dit", "vae", "cond", "text"), torch.bfloat16)) == "bf16"
    labels = [
        precision_label(dict(zip(("dit", "vae", "cond", "text"), combo)))
        for combo in itertools.product(DTYPE_NAMES, repeat=4)
    ]
    assert max(len(label) for label in labels) <= 64


def test_auto_device_is_cuda_only_when_there_is_one() -> None:
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_model_label_is_the_cuda_plan() -> None:
    model = load_model("tiny", device="cuda")
    assert model.precision == "dit=bf16 vae=fp32 cond=fp32 text=fp32"  # the tiny model's byte-level T5 stays fp32
