"""`amp`: one meaning for training, the attack and the throughput measurement."""

from __future__ import annotations

import pytest
import torch

from suite.errors import SuiteError
from suite.precision import autocast, grad_scaler

CPU = torch.device("cpu")


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_each_amp_computes_in_its_dtype(amp, dtype):
    with autocast(amp, CPU)():
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == dtype
    with autocast("fp32", CPU)():
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize(("amp", "scaled"), [("fp32", False), ("bf16", False), ("fp16", True)])
def test_only_fp16_scales_the_loss(amp, scaled):
    """bfloat16 has float32's range: its gradients need no scaling, whose overflow check would skip
    steps a diverging run should stop at, and cost a host sync per step."""
    assert grad_scaler(amp, CPU).is_enabled() is scaled


def test_an_unknown_amp_names_the_key_and_the_choices():
    with pytest.raises(SuiteError, match="unknown amp 'fp8'") as err:
        autocast("fp8", CPU)
    assert err.value.key == "amp" and "bf16" in str(err.value)


def test_a_device_torch_cannot_autocast_is_an_error_not_a_silent_float32(monkeypatch):
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *args: False)  # as torch answers it then
    with pytest.raises(SuiteError, match="amp=bf16 is not supported on cpu"):
        autocast("bf16", CPU)


def test_an_fp16_training_step_is_timed_with_the_loss_scaling_training_uses():
    from suite.measure.throughput import BenchSettings, train_step

    class Faint(torch.nn.Module):  # weight gradients of ~1e-8: below float16's range unless the loss is scaled
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3 * 8 * 8, 4)
            torch.nn.init.zeros_(self.fc.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1) * 1e-4) * 1e-4

    model = Faint()
    train_step(model, 2, BenchSettings(CPU, img_size=8, amp="fp16"))()
    assert (model.fc.weight != 0).float().mean() > 0.9  # unscaled, every one of them flushes to zero
