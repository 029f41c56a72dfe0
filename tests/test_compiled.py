"""torch.compile on the DiT: fixed batch shapes, and eager whenever compilation fails."""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from audiox_core.model.compiled import BATCH_SIZES, CompiledForward, compile_dit, compile_wanted, padded_size
from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
from audiox_core.model.runtime import load_model

FAST = SamplingSettings(steps=3)


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 224, 224, 3), dtype=np.uint8)


def test_batches_pad_to_a_few_fixed_sizes() -> None:
    assert [padded_size(n) for n in (1, 2, 3, 5, 8, 9, 17, 32)] == [1, 2, 4, 8, 8, 16, 32, 32]
    assert padded_size(40) == 40  # past the largest size a batch keeps its own
    assert len({padded_size(n) for n in range(1, 33)}) == len(BATCH_SIZES)


def test_compiles_on_cuda_only_and_never_when_switched_off(monkeypatch) -> None:
    assert not compile_wanted(torch.device("cpu"))
    assert compile_wanted(torch.device("cuda"))
    monkeypatch.setenv("AUDIOX_COMPILE", "0")
    assert not compile_wanted(torch.device("cuda"))


def test_a_compiler_that_fails_at_once_leaves_the_pass_eager(caplog) -> None:
    def broken(fn):
        raise RuntimeError("no Triton here\nlong traceback")

    with caplog.at_level(logging.WARNING):
        forward = CompiledForward(lambda x: x * 2, broken)
    assert not forward.active and forward.failure == "RuntimeError: no Triton here"
    assert torch.equal(forward(torch.ones(2)), torch.full((2,), 2.0))
    assert "runs eager" in caplog.text


def test_a_compiled_call_that_fails_falls_back_once_and_stays_eager(caplog) -> None:
    calls = []

    def fails_when_called(fn):
        def compiled(x):
            calls.append(x.shape)
            raise torch._dynamo.exc.Unsupported("op not supported")  # what dynamo raises mid-trace

        return compiled

    forward = CompiledForward(lambda x: x + 1, fails_when_called)
    with caplog.at_level(logging.WARNING):
        assert torch.equal(forward(torch.zeros(3)), torch.ones(3))
        assert torch.equal(forward(torch.zeros(3)), torch.ones(3))
    assert len(calls) == 1 and not forward.active  # the compiled path was tried once
    assert caplog.text.count("torch.compile of the DiT failed") == 1


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_padded_batches_give_each_request_what_an_unpadded_batch_gives() -> None:
    """With the DiT routed through a (pass-through) compiler, 3 requests run as a batch of 4; each
    real request's audio equals the eager, unpadded batch's."""
    eager = load_model("tiny", device="cpu")
    requests = [GenerationRequest(frames(5, i), f"cue {i}", 20 + i, 0.5) for i in range(3)]
    expected = generate(eager, requests, FAST)
    shapes = []
    model = load_model("tiny", device="cpu")
    wrapped = compile_dit(model.network.model.model, lambda fn: lambda x, *a: (shapes.append(x.shape[0]), fn(x, *a))[1])
    got = generate(dataclasses.replace(model, compiled=wrapped), requests, FAST)
    assert set(shapes) == {8}  # 4 requests, conditional and unconditional halves
    assert len(got) == 3
    for a, b in zip(got, expected):
        # fp tolerance as in test_batch_equals_single_calls: batch sizes round matmuls differently
        torch.testing.assert_close(a, b, rtol=0, atol=1e-3 * float(b.abs().max()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: torch.compile runs on the GPU path only")
def test_the_compiled_dit_matches_eager_in_bf16_on_cuda() -> None:
    model = load_model("tiny", device="cuda")
    assert model.compiled is not None
    requests = [GenerationRequest(frames(5, i), f"cue {i}", 30 + i, 0.5) for i in range(3)]
    compiled = generate(model, requests, FAST)
    assert model.compiled.active, model.compiled.failure
    eager = generate(dataclasses.replace(model, compiled=None), requests, FAST)
    for a, b in zip(compiled, eager):
        assert (a - b).abs().max() <= 0.05 * b.abs().max() + 1e-3
