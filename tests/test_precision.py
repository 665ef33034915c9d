"""`amp`: one meaning for training, the attack and the throughput measurement."""

from __future__ import annotations

import pytest
import torch

from suite.errors import SuiteError
from suite.precision import autocast

CPU = torch.device("cpu")


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_each_amp_computes_in_its_dtype(amp, dtype):
    with autocast(amp, CPU)():
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == dtype
    with autocast("fp32", CPU)():
        assert not torch.is_autocast_enabled("cpu")


def test_an_unknown_amp_names_the_key_and_the_choices():
    with pytest.raises(SuiteError, match="unknown amp 'fp8'") as err:
        autocast("fp8", CPU)
    assert err.value.key == "amp" and "bf16" in str(err.value)


def test_a_device_torch_cannot_autocast_is_an_error_not_a_silent_float32(monkeypatch):
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *args: False)  # as torch answers it then
    with pytest.raises(SuiteError, match="amp=bf16 is not supported on cpu"):
        autocast("bf16", CPU)
