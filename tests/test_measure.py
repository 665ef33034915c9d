"""suite.measure: multiply-add counts, throughput, peak memory, OOM back-off, `suite profile`."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pickle
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from suite.cli import main
from suite.config import resolve
from suite.errors import SuiteError, TooSmall
from suite.measure import complexity, profile, throughput
from suite.measure.complexity import measure_complexity, model_complexity
from suite.measure.memory import MIB, MemoryProbe
from suite.measure.throughput import (
    BenchSettings,
    decay_batch_step,
    inference_step,
    is_oom,
    prepare,
    summarize,
    time_steps,
    train_step,
    with_batch_backoff,
)
from suite.models import create_model, get_model_info, list_models, resolve_model_kwargs
from suite.ops import PAIRWISE_RELATIONS, aggregation, pairwise_relation

from processes import alive, wait_for

CPU = torch.device("cpu")
COMPLEXITY_CSV = Path(__file__).resolve().parents[1] / "results" / "complexity.csv"


# ------------------------------------------------------------------------------- multiply-adds
def test_gmacs_of_conv_bn_linear_match_hand_count():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),  # 8x8 -> 4x4
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    model.train()
    model[4].bias.requires_grad_(False)  # a frozen parameter: counted, not trainable
    c = measure_complexity(model, img_size=8)
    conv = 4 * 4 * 4 * (3 * 3 * 3)  # output elements x (C_in k^2)
    bn = 2 * 4 * 4 * 4  # eval mode: 2 per element
    linear = 64 * 10
    assert c.gmacs * 1e9 == pytest.approx(conv + bn + linear, abs=1e-6)
    assert c.params == c.trainable_params + 10 == 3 * 4 * 9 + 2 * 4 + 64 * 10 + 10
    assert c.macts * 1e6 == pytest.approx(4 * 4 * 4 + 10)  # conv and linear outputs
    assert c.unsupported_ops == {} and "aten::relu" in c.skipped_ops
    assert model.training, "the model's mode must be restored"
    measure_complexity(model.eval(), img_size=8)
    assert not model.training, "the model's mode must be restored"


def test_a_batch_norm_folded_into_addcmul_costs_what_batch_norm_does():
    """SAN's streamed gamma folds its BN into one addcmul: the model's total must not change with it."""

    class Folded(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            scale = self.bn.weight * (self.bn.running_var + self.bn.eps).rsqrt()
            shift = self.bn.bias - self.bn.running_mean * scale
            return torch.addcmul(shift[:, None, None], x, scale[:, None, None])

    folded = measure_complexity(Folded(), img_size=8, in_chans=4)
    plain = measure_complexity(nn.BatchNorm2d(4), img_size=8, in_chans=4)
    assert folded.gmacs * 1e9 == plain.gmacs * 1e9 == pytest.approx(2 * 4 * 8 * 8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_counts_of_a_model_in_another_dtype_equal_fp32(dtype):
    """The dummy input takes the model's dtype: a .double() or .half() model is counted, not refused."""
    fp32 = measure_complexity(create_model("san10_pairwise"), img_size=128)
    other = measure_complexity(create_model("san10_pairwise").to(dtype), img_size=128)
    assert (other.params, other.gmacs, other.macts) == (fp32.params, fp32.gmacs, fp32.macts) and fp32.gmacs > 0.5
    assert other.unsupported_ops == {}


def test_elementwise_ops_are_listed_as_skipped_not_counted():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)

        def forward(self, x):
            return x + torch.sigmoid(self.conv(x)) * x

    c = measure_complexity(Residual(), img_size=4, in_chans=2)
    assert c.gmacs * 1e9 == pytest.approx(2 * 2 * 16)
    assert {"aten::add", "aten::mul", "aten::sigmoid"} <= set(c.skipped_ops)
    assert c.unsupported_ops == {}


def test_max_pooling_written_as_a_reduction_costs_nothing_as_max_pooling_does():
    """CBAM's channel and spatial maxima (`x.amax`, `x.max(dim)`, nn.AdaptiveMaxPool2d) were
    unsupported ops while their averages (`x.mean`) were skipped: max pooling costs nothing here."""
    class CBAMPools(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)
            self.pool = nn.AdaptiveMaxPool2d(1)

        def forward(self, x):
            x = self.conv(x)
            return (x.amax((2, 3), keepdim=True) + x.amin((2, 3), keepdim=True) + self.pool(x)
                    + x.max(1, keepdim=True)[0] + x.mean((2, 3), keepdim=True))

    c = measure_complexity(CBAMPools(), img_size=4, in_chans=2)
    assert c.unsupported_ops == {}
    assert {"aten::amax", "aten::amin", "aten::adaptive_max_pool2d", "aten::max"} <= set(c.skipped_ops)
    assert c.gmacs * 1e9 == pytest.approx(2 * 2 * 16)  # the conv alone


def test_a_failing_activation_count_leaves_only_that_count_missing(monkeypatch):
    """Both counts come from one trace: a handle that fails for activations must not cost the MACs."""
    def broken(inputs, outputs):
        raise ValueError("no shape")

    monkeypatch.setattr(complexity, "_FVCORE_ACTIVATION_HANDLES",
                        {**complexity._FVCORE_ACTIVATION_HANDLES, "aten::linear": broken})
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.Flatten(), nn.Linear(32, 5))
    c = measure_complexity(model, img_size=4)
    assert c.gmacs * 1e9 == pytest.approx(2 * 3 * 16 + 32 * 5)
    assert c.macts is None and c.macts_error == "ValueError: no shape"
    assert c.as_row()["macts_error"] == "ValueError: no shape" and c.unsupported_ops == {}


@pytest.mark.parametrize("mask_type", ["encoder_decoder", "local"])
@pytest.mark.parametrize("mask_norm", ["mixed", "channel", "spatial"])
def test_every_mask_variant_is_counted_without_unsupported_ops(mask_norm, mask_type):
    c = model_complexity("ran56_cifar", mask_norm=mask_norm, mask_type=mask_type, base_width=4)
    assert c.unsupported_ops == {} and c.gmacs > 0


def test_model_complexity_checks_the_input_size_as_suite_profile_does():
    """A researcher's `model_complexity(name, img_size)` meets what `suite profile --input-size`
    meets: a size the model's pools cannot take is a SuiteError naming it (it was torch's
    "Output size is too small" from deep in the mask branch), and 0 is refused rather than read as
    "not given" (it measured the 224 px model instead)."""
    with pytest.raises(SuiteError, match=r"^img_size: inputs of 16 px are too small: .* at least 31 px"):
        model_complexity("ran56", img_size=16, base_width=2)
    for size in (0, -32):
        with pytest.raises(SuiteError, match=rf"^img_size: must be >= 1, got {size}$"):
            model_complexity("ran56_cifar", img_size=size, base_width=2)
    with pytest.raises(SuiteError, match=r"^base_widht: model 'ran56_cifar' has no option 'base_widht'"):
        model_complexity("ran56_cifar", base_widht=2)
    assert model_complexity("ran56_cifar", img_size=40, base_width=2).gmacs > model_complexity(
        "ran56_cifar", base_width=2).gmacs  # a size the model takes is measured at that size


def test_a_profile_job_with_values_no_run_can_take_is_refused_when_made():
    """`profile_model(ProfileJob(...))` from Python skips `suite profile`'s argument checks: a
    misspelt bench was a KeyError, batch_size=0 a row of 0 img/s, steps=0 "no samples", img_size=0
    the natural size measured instead. The job now refuses them as the command does."""
    with pytest.raises(SuiteError, match=r"^bench: unknown bench 'infr'; did you mean 'infer'\? "
                                         r"\(valid: complexity, infer, train, all\)$"):
        profile.ProfileJob("ran56_cifar", bench="infr")
    for key in ("img_size", "batch_size", "warmup", "steps", "threads"):
        with pytest.raises(SuiteError, match=rf"^{key}: must be >= 1, got 0$"):
            profile.ProfileJob("ran56_cifar", bench="infer", **{key: 0})
    assert profile.ProfileJob("ran56_cifar", bench="all", steps=1).phases == ("infer", "train")


def test_profiling_in_the_calling_process_leaves_its_thread_count():
    """`profile_model(ProfileJob(..., threads=1))` in a notebook left torch on one thread for the rest
    of the session (every later cell ran single-threaded); measure_complexity restores its count too."""
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    job = profile.ProfileJob("ran56_cifar", {"base_width": 2}, bench="infer", img_size=8, device="cpu", batch_size=2,
                             warmup=1, steps=1, threads=other)
    assert profile.profile_model(job)["threads"] == other
    assert torch.get_num_threads() == before


def test_measuring_in_the_calling_process_leaves_its_cudnn_autotuning(monkeypatch):
    """Timed steps on CUDA run cuDNN-autotuned (throughput.autotune); profile_model, or a run's
    measure_run, from a notebook left autotuning on for the rest of the session, as profile_model
    once left its thread count. (No GPU here: the CPU job's autotune is CUDA's.)"""
    tune = throughput.autotune
    tuned = []
    monkeypatch.setattr(throughput, "autotune", lambda device: tuned.append(tune(torch.device("cuda")) or
                                                                           torch.backends.cudnn.benchmark))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    job = profile.ProfileJob("ran56_cifar", {"base_width": 2}, bench="infer", img_size=8, device="cpu", batch_size=2,
                             warmup=1, steps=1)
    profile.profile_model(job)
    config = resolve({"model.name": "ran56_cifar", "model.base_width": 2, "data.name": "digits", "data.input_size": 8,
                      "device": "cpu", "measure.batch_size": 2, "measure.warmup": 1, "measure.steps": 1})
    assert profile.measure_run(config)["throughput"]["infer_batch_size"] == 2
    assert tuned == [True] * 3 and torch.backends.cudnn.benchmark is False  # one infer, one infer and one train
    torch.backends.cudnn.benchmark = True  # a caller that tunes (a training process) keeps it on
    profile.profile_model(job)
    assert torch.backends.cudnn.benchmark is True


def test_a_profile_job_refuses_values_of_the_wrong_kind_naming_the_field():
    """What the command's parser refuses, a job made in Python refused only deep inside torch (img_size
    32.0: "zeros(): argument 'size' failed to unpack", batch_size "4": "'<' not supported"), took
    img_size=True for a size ("inputs of True px"), or took silently: amp 'fp8' (an error only once timed) and a reference
    beside the complexity count, which times nothing, so no ratio was made. Each is named now."""
    for key, value in (("img_size", 32.0), ("img_size", True), ("batch_size", "4"), ("steps", 1.5)):
        with pytest.raises(SuiteError, match=rf"^{key}: must be a whole number, got {value!r}$"):
            profile.ProfileJob("ran56_cifar", bench="infer", **{key: value})
    with pytest.raises(SuiteError, match=r"^img_size: must be a whole number, got 32.0$"):
        model_complexity("ran56_cifar", img_size=32.0, base_width=2)
    with pytest.raises(SuiteError, match=r"^amp: unknown amp 'fp8'.*\(valid: fp32, bf16, fp16\)$"):
        profile.ProfileJob("ran56_cifar", amp="fp8")
    with pytest.raises(SuiteError, match=r"^reference: a reference compares throughput: use bench='infer', "):
        profile.ProfileJob("ran56_cifar", reference="resnet26")
    with pytest.raises(SuiteError, match=r"^model_kwargs: expected a dict of model options, got list$"):
        profile.ProfileJob("ran56_cifar", ["base_width=4"])
    # the registry names an unknown model by its config key, model.name; a job's field is `model`
    with pytest.raises(SuiteError, match=r"^model: unknown model 'resnet2x'"):
        profile.profile_model(profile.ProfileJob("resnet2x"))
    with pytest.raises(SuiteError, match=r"^model: unknown model 'resnet2x'"):
        profile.profile([profile.ProfileJob("resnet2x")])
    job = profile.ProfileJob("ran56_cifar", {"base_width": 2}, img_size=np.int64(40))  # a whole number all the same
    assert job.img_size == 40 and type(job.img_size) is int and profile.child_command(job)


def test_a_profile_jobs_reference_is_checked_before_anything_is_timed_and_named_as_given(monkeypatch):
    """`profile_model(ProfileJob(..., reference=R))` built the reference only once the model's steps
    were timed, so a misspelt one failed after the whole measurement, as `model: unknown model
    'resnet2x'` (the job's model, which was right), and one that cannot take the size as a bare
    message naming neither `img_size` nor the reference. `suite profile` checks the reference up
    front; the job now does too, naming `reference`, `img_size` or the option as Python gives them."""
    monkeypatch.setattr(profile, "benchmark", lambda *args, **kwargs: pytest.fail("timed before the reference's check"))
    job = functools.partial(profile.ProfileJob, "ran56_cifar", {"base_width": 2}, bench="infer", img_size=32,
                            device="cpu", batch_size=2, warmup=1, steps=1)
    with pytest.raises(SuiteError, match=r"^reference: unknown model 'resnet2x'; did you mean 'resnet26'"):
        profile.profile_model(job(reference="resnet2x"))
    with pytest.raises(SuiteError, match=r"^img_size: inputs of 16 px are too small: .*\(the reference, ran56\)$"):
        profile.profile_model(job(img_size=16, reference="ran56"))
    with pytest.raises(SuiteError, match=r"^img_size: inputs of 32 px leave stage 3 .*\(the reference, "
                                         r"san10_pairwise\); use inputs of 128 px or more \(the option padding would "
                                         r"go to ran56_cifar too, which has no such option\)$"):
        profile.profile_model(job(reference="san10_pairwise"))  # ran56_cifar has no padding: the size is advised


def test_a_profile_job_names_the_input_size_as_its_caller_gave_it(capsys):
    """A size the model cannot take is `img_size` from Python (it said `--input-size`, a flag a
    notebook never typed), as model_complexity says it; `suite profile` keeps naming its flag, in
    its own process and in a child's row alike."""
    job = profile.ProfileJob("ran56", img_size=30)
    for call in (lambda: profile.profile_model(job), lambda: model_complexity("ran56", img_size=30)):
        with pytest.raises(SuiteError, match=r"^img_size: inputs of 30 px are too small: "):
            call()
    assert profile._child([json.dumps(dataclasses.asdict(job))]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert row["error"].startswith("--input-size: inputs of 30 px are too small: ")


def test_a_misspelt_model_option_is_named_as_its_caller_gave_it(capsys):
    """From Python the option is `model_kwargs['base_widht']` (it said `model.base_widht`, the spelling
    of specs and the command line, which a notebook never typed); `suite profile`, its child's row and
    a run's measurement keep that spelling, as for the input size above."""
    job = profile.ProfileJob("san10_pairwise", model_kwargs={"base_widht": 2})
    with pytest.raises(SuiteError, match=r"^model_kwargs\['base_widht'\]: model 'san10_pairwise' has no option "
                                         r"'base_widht' \(valid: footprint, "):
        profile.profile_model(job)
    assert profile._child([json.dumps(dataclasses.asdict(job))]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert row["error"].startswith("model.base_widht: model 'san10_pairwise' has no option 'base_widht'")
    assert main(["profile", "san10_pairwise", "model.base_widht=2"]) == 2
    assert "error: model.base_widht: model 'san10_pairwise' has no option" in capsys.readouterr().err
    config = resolve({"model.name": "ran56_cifar", "data.name": "digits", "measure.throughput": False})
    misspelt = dataclasses.replace(config, model=dataclasses.replace(config.model, kwargs={"base_widht": 2}))
    with pytest.raises(SuiteError) as err:  # a run's config.json edited by hand: the spec's spelling
        profile.measure_run(misspelt)
    assert err.value.key == "model.base_widht"


def test_a_model_check_names_its_own_key_as_the_caller_spells_options(capsys):
    """A family's check may name an option the job did not set (footprint 9 at 32 px: SAN's check says
    `padding`, left at 'reflect'); it was named bare `padding` from Python, `suite profile` and a run,
    each of which spells options otherwise. It is named as each spells the options it was given."""
    job = profile.ProfileJob("san10_pairwise", model_kwargs={"footprint": 9}, img_size=32)
    with pytest.raises(SuiteError, match=r"^model_kwargs\['padding'\]: inputs of 32 px leave stage 2 a 4x4 map"):
        profile.profile_model(job)
    assert profile._child([json.dumps(dataclasses.asdict(job))]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert row["error"].startswith("model.padding: inputs of 32 px leave stage 2")
    assert main(["profile", "san10_pairwise", "model.footprint=9", "--input-size", "32"]) == 2
    assert "error: model.padding: inputs of 32 px leave stage 2" in capsys.readouterr().err
    config = resolve({"model.name": "san10_pairwise", "data.name": "digits", "data.input_size": 32,
                      "model.padding": "zeros", "measure.throughput": False})
    reflect = dataclasses.replace(config, model=dataclasses.replace(config.model, kwargs={
        **config.model.kwargs, "footprint": 9, "padding": "reflect"}))  # a run's config.json edited by hand
    with pytest.raises(SuiteError) as err:
        profile.measure_run(reflect)
    assert err.value.key == "model.padding"


def test_the_python_api_names_an_unknown_model_by_the_argument_the_caller_typed(capsys):
    """create_model, count_params and model_complexity named an unknown model `model.name`, a spec's
    key, where profile_model named its job's field `model`: each names its own argument now, and the
    commands still name what their users typed."""
    from suite.measure import count_params, model_complexity
    from suite.models import create_model

    for call, key in ((lambda: create_model("resnet62"), "name"), (lambda: count_params("resnet62"), "name"),
                      (lambda: model_complexity("resnet62", img_size=32), "name"),
                      (lambda: profile.profile_model(profile.ProfileJob("resnet62")), "model")):
        with pytest.raises(SuiteError, match=rf"^{key}: unknown model 'resnet62'; did you mean 'resnet26' "):
            call()
    for command, key in ((["models", "resnet62"], "model"), (["profile", "resnet62"], "model"),
                         (["train", "resnet62"], "model")):
        assert main(command) == 2
        assert capsys.readouterr().err.startswith(f"error: {key}: unknown model 'resnet62'")


def test_measuring_in_the_calling_process_leaves_its_random_stream_where_it_was():
    """profile_model and model_complexity built and fed their model from torch's global random
    stream, so a notebook that seeded torch drew other numbers after profiling; they measure on a
    fork of it now, and the caller's next draws are those it would have drawn."""
    from suite.measure import model_complexity

    torch.manual_seed(0)
    expected = torch.rand(4)
    for measure in (lambda: profile.profile_model(profile.ProfileJob("resnet26", img_size=32, bench="infer",
                                                                     batch_size=1, warmup=1, steps=1)),
                    lambda: model_complexity("resnet26", img_size=32)):
        torch.manual_seed(0)
        measure()
        assert torch.equal(torch.rand(4), expected)


def test_a_jobs_reference_is_resolved_once_and_built_from_what_its_check_resolved(monkeypatch):
    """profile_model checked its reference's options (resolving them) before timing, then resolved
    them again to build it; the check's result builds it now."""
    resolved = []
    real = profile.resolve_model_kwargs
    monkeypatch.setattr(profile, "resolve_model_kwargs", lambda name, *a, **k: resolved.append(name) or real(name, *a, **k))
    row = profile.profile_model(profile.ProfileJob("resnet26", bench="infer", reference="resnet38", img_size=32,
                                                   batch_size=1, warmup=1, steps=1))
    assert resolved == ["resnet38"] and row["infer_throughput_vs_reference"] > 0


def test_a_run_names_a_size_its_model_cannot_take_as_its_spec_does():
    """measure_run measures at the run's data.input_size; a size the model's pools cannot take (a
    config.json edited by hand) was named `img_size`, ProfileJob's field, which no spec has."""
    config = resolve({"model.name": "ran56", "model.base_width": 2, "data.name": "digits", "data.input_size": 32,
                      "measure.throughput": False})
    small = dataclasses.replace(config, data=dataclasses.replace(config.data, input_size=30))
    with pytest.raises(SuiteError, match=r"^data\.input_size: inputs of 30 px are too small: ") as err:
        profile.measure_run(small)
    assert err.value.key == "data.input_size"


class _Flat(nn.Module):
    """A plugin's network built for one size: a fixed Linear after a flatten, with no check saying so."""

    def __init__(self, num_classes: int, bug: bool) -> None:
        super().__init__()
        self.conv, self.fc, self.bug = nn.Conv2d(3, 2, 3, padding=1), nn.Linear(2 * 8 * 8, num_classes), bug

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bug:
            raise RuntimeError("a bug of its own")
        return self.fc(torch.flatten(self.conv(x), 1))


@pytest.fixture
def flat_nets():
    """flat8_net takes its own 8 px only; buggy8_net fails at every size."""
    from suite.models import register_model
    from suite.models.registry import _REGISTRY

    @register_model(input_size=8)
    def flat8_net(*, num_classes: int = 10) -> nn.Module:
        return _Flat(num_classes, bug=False)

    @register_model(input_size=8)
    def buggy8_net(*, num_classes: int = 10) -> nn.Module:
        return _Flat(num_classes, bug=True)

    yield
    del _REGISTRY["flat8_net"], _REGISTRY["buggy8_net"]


def test_a_size_a_models_forward_cannot_take_names_the_model_the_size_and_what_set_it(flat_nets, tmp_path, capsys):
    """A model without a check for its input size (a fixed Linear after a flatten) failed in the
    complexity trace, a timed step or training's first batch with torch's bare `mat1 and mat2
    shapes cannot be multiplied`; each says the model, the size and what set it now, with torch's
    words. A forward that fails at the model's own size too is raised as it came."""
    torch_says = "RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    own = "(it runs at its own size, 8 px)"
    with pytest.raises(SuiteError, match=rf"^img_size: model 'flat8_net' does not take inputs of 6 px "
                                         rf"{re.escape(own)}: {torch_says} \(1x72 and 128x10\)$"):
        model_complexity("flat8_net", img_size=6)
    assert model_complexity("flat8_net").params == 2 * 3 * 9 + 2 + 128 * 10 + 10  # its own size runs
    assert main(["profile", "flat8_net", "--input-size", "6"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --input-size: model 'flat8_net' does not take inputs of 6 px "
                                              f"{own}: {torch_says}")
    job = profile.ProfileJob("flat8_net", img_size=6, bench="infer", device="cpu", batch_size=2, warmup=1, steps=1)
    with pytest.raises(SuiteError, match=rf"^img_size: model 'flat8_net' does not take inputs of 6 px .*{torch_says}"):
        profile.profile_model(job)  # a timed measurement's first step
    for given, size in (({}, "32 px, the image size of digits"), ({"measure.throughput": False, "data.input_size": 16},
                                                                   "16 px")):
        config = resolve({"model.name": "flat8_net", "data.name": "digits", **given})
        with pytest.raises(SuiteError, match=rf"^data\.input_size: model 'flat8_net' does not take inputs of {size} "
                                             rf"{re.escape(own)}: {torch_says}"):
            profile.measure_run(config)  # a run's measurement, timed or counted
    assert main(["train", "flat8_net", "iterations=1", "--threads", "1", "--no-progress",
                 "--run-dir", str(tmp_path / "run")]) == 2  # training's first batch
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"error: data.input_size: model 'flat8_net' does not take inputs of 32 px, the image size of digits {own}: "
        f"{torch_says}")
    with pytest.raises(RuntimeError, match="^a bug of its own$"):  # not the size: no SuiteError claims it is
        model_complexity("buggy8_net", img_size=6)


class _Triple(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 3

    @staticmethod
    def backward(ctx, grad):
        return grad * 3


class _CustomOpNet(nn.Module):
    def forward(self, x):
        return _Triple.apply(x)


def test_custom_autograd_function_is_unsupported_until_a_handle_is_registered(monkeypatch):
    c = measure_complexity(_CustomOpNet(), img_size=4)
    assert c.unsupported_ops == {"prim::PythonOp._Triple": 1} and c.gmacs == 0
    monkeypatch.setitem(complexity.FLOP_HANDLES, "prim::PythonOp._Triple", lambda i, o: 7)
    c = measure_complexity(_CustomOpNet(), img_size=4)
    assert c.unsupported_ops == {} and c.gmacs * 1e9 == pytest.approx(7)


@pytest.mark.parametrize("relation", PAIRWISE_RELATIONS)
def test_san_op_handles_count_what_they_document(relation):
    """suite.ops.flops: Aggregation k^2 per output element; LocalRelation C per element for the
    dot product, 0 for concatenation (a copy), 1 per element otherwise."""
    n, c, h, w, k = 1, 4, 5, 5, 3
    value_channels = 8

    class Net(nn.Module):
        def forward(self, x):
            delta = pairwise_relation(x[:, :c], x[:, c : 2 * c], relation, k)  # (N, width, K, H*W)
            return aggregation(x[:, :value_channels], delta, k)

    result = measure_complexity(Net(), img_size=h, in_chans=2 * c)
    width = {"concatenation": 2 * c, "dot": 1}.get(relation, c)
    per_element = {"concatenation": 0, "dot": c}.get(relation, 1)
    expected = n * width * k * k * h * w * per_element + n * value_channels * h * w * k * k
    assert result.gmacs * 1e9 == pytest.approx(expected)
    assert result.unsupported_ops == {}


# ------------------------------------------------------------- the committed complexity table
def _committed_table() -> pd.DataFrame:
    assert COMPLEXITY_CSV.exists(), "regenerate: suite profile --all --to results/complexity.csv"
    return pd.read_csv(COMPLEXITY_CSV, keep_default_na=False).set_index("model")


def _shipped() -> list[str]:
    """The suite's own models: not those of model plugins installed where the tests run."""
    return [n for n in list_models() if get_model_info(n).source == "suite"]


def test_committed_table_lists_exactly_the_registered_models():
    missing = set(_shipped()) - set(_committed_table().index)
    extra = set(_committed_table().index) - set(_shipped())
    assert not missing and not extra, (
        f"results/complexity.csv is stale (missing {sorted(missing)}, extra {sorted(extra)}): "
        "suite profile --all --to results/complexity.csv"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", _shipped())
def test_committed_table_matches_the_code(name):
    table = _committed_table()
    assert name in table.index, "suite profile --all --to results/complexity.csv"
    row = table.loc[name]
    c = model_complexity(name)
    assert int(row["img_size"]) == get_model_info(name).input_size
    assert int(row["params"]) == c.params
    assert float(row["gmacs"]) == pytest.approx(c.gmacs, rel=1e-9)
    assert float(row["macts"]) == pytest.approx(c.macts, rel=1e-9)
    assert row["unsupported_ops"] == "" == complexity.format_ops(c.unsupported_ops)


# A registration's paper parameters that its model's count does not round to, with the count (M) and
# why: ran.md and each builder's docstring say more. Every other one must round to its paper's figure.
PARAMS_OFF_THE_PAPER = {
    "ran56": 31.81,  # the prototxt's count; the paper's 31.9 adds the BN running statistics
    "ran92": 52.47,  # the prototxt's count; 1.17 M above the paper's 51.3 (test_ran92_parts_...)
    "ranext56": 31.32,  # Table 7 prints Attention-56's 31.9
    "resnext101_32x4d": 44.18,  # RAN's 44.5 is ResNet-101's count
    "ran92_cifar": 1.83, "ran236_cifar": 4.80, "ran452_cifar": 9.36,  # the inferred CIFAR layout (ran.md)
}


@pytest.mark.parametrize("name", [n for n in _shipped() if "params_m" in get_model_info(n).paper])
def test_a_registrations_paper_parameters_are_its_models(name):
    """The registration is the one place a model's published figures live (specs compare runs with
    them): a mistyped figure must show here, not as a spurious difference in every table."""
    params_m = complexity.count_params(name) / 1e6
    paper = get_model_info(name).paper["params_m"]
    if name in PARAMS_OFF_THE_PAPER:
        assert round(params_m, 2) == PARAMS_OFF_THE_PAPER[name] and abs(params_m / paper - 1) < 0.1
    else:
        assert round(params_m, 1) == paper


@pytest.mark.parametrize("name", [n for n in _shipped() if "gmacs" in get_model_info(n).paper])
def test_a_registrations_paper_gmacs_are_near_its_models(name):
    """Against the committed count (test_committed_table_matches_the_code keeps it the code's): within
    5 %, the spread of the papers' counters (SAN's also charges ReLU and pooling, RAN's strides differ)."""
    gmacs = float(_committed_table().loc[name, "gmacs"])
    assert 0.95 < gmacs / get_model_info(name).paper["gmacs"] < 1.05


# ----------------------------------------------------------------------------------- throughput
class _Sleepy(nn.Module):
    """A forward that takes a known time: it sleeps, and records how long the sleep really took
    (a loaded machine oversleeps by milliseconds; that is not a measurement error)."""

    def __init__(self, seconds: float, classes: int = 5):
        super().__init__()
        self.seconds, self.slept = seconds, []
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        t0 = time.perf_counter()
        time.sleep(self.seconds)
        self.slept.append(time.perf_counter() - t0)
        return self.fc(x.mean((2, 3)))

    def median_sleep(self, last: int) -> float:
        return statistics.median(self.slept[-last:])


def _settings(**kw) -> BenchSettings:
    return BenchSettings(**{"device": CPU, "img_size": 8, "warmup": 1, "steps": 5, **kw})


@pytest.mark.parametrize("step", [inference_step, train_step])
def test_throughput_of_a_known_step_time(step, one_thread):
    s, model = _settings(steps=7), _Sleepy(0.05)
    prepared = prepare(functools.partial(step, model, s=s), 4, s)
    (times,) = time_steps([prepared.step], s.steps, CPU)
    timing = summarize(times, prepared.batch_size)
    known = model.median_sleep(s.steps)
    assert known >= 0.05
    assert timing.step_time == pytest.approx(known * 1e3, rel=0.1)
    assert timing.samples_per_sec == pytest.approx(4 / known, rel=0.1)


def test_an_inference_step_runs_the_network_as_evaluated():
    """Eval mode and inference mode, as a trained network is evaluated: in training mode BatchNorm
    would time batch statistics, and autograd would time (and hold memory for) a graph."""
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((self.training, torch.is_inference_mode_enabled()))
            return x.mean((2, 3))

    inference_step(Probe().train(), 2, _settings())()
    assert seen == [(False, True)]


def test_a_training_step_starts_from_no_gradient():
    """Each timed step is one training step: its gradients replace the last step's (zero_grad), not
    add to them (and the freed gradients are not in the step's peak memory)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    step = train_step(model, 2, _settings())
    step()
    first = model[1].weight.grad.clone()
    step()  # lr 1e-4: the weights barely moved, so the gradient is about the same, not twice it
    assert (model[1].weight.grad - first).norm() < 0.05 * first.norm()


def test_timed_rounds_rotate_which_step_goes_first():
    order = []
    steps = [lambda: order.append("a"), lambda: order.append("b"), lambda: order.append("c")]
    time_steps(steps, 3, CPU)
    assert order[-9:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # after the untimed settling rounds


def test_step_time_is_the_median_and_samples_per_sec_the_batch_over_it():
    """Medians: one step slowed by other load on a shared machine moves neither figure."""
    timing = summarize([0.1, 0.2, 0.3, 0.4, 10.0], 8)
    assert (timing.step_time, timing.samples_per_sec) == (pytest.approx(300), pytest.approx(8 / 0.3))
    assert timing.step_time_iqr == pytest.approx(200)


def test_reference_ratio_from_interleaved_steps(one_thread):
    s, model, reference = _settings(steps=4), _Sleepy(0.02), _Sleepy(0.04)
    timings, ratios = profile.benchmark(model, ("infer",), s, MemoryProbe.start(CPU), 4, lambda: reference)
    known = reference.median_sleep(s.steps) / model.median_sleep(s.steps)  # about 2
    assert ratios["infer"] == pytest.approx(known, rel=0.1)
    assert timings["infer"].step_time == pytest.approx(model.median_sleep(s.steps) * 1e3, rel=0.1)


# --------------------------------------------------------------------------------------- memory
def _allocate(mib: int, hold: float = 0.0):
    x = torch.ones(mib * MIB // 4)  # written, so the pages are resident
    time.sleep(hold)
    del x


def test_peak_memory_of_a_step_that_allocates_200_mib():
    _allocate(400)  # an earlier, larger peak must not leak into the step's figure
    probe = MemoryProbe.start(CPU)
    assert probe.method in ("cpu_rss_hwm", "cpu_rss_sampled")
    peak = probe.peak_mb(lambda: _allocate(200, hold=0.05))
    assert 190 <= peak <= 240


def test_memory_freed_after_the_baseline_is_no_negative_peak():
    """A negative figure would make the run's record unreadable (a cost below zero)."""
    held = torch.ones(64 * MIB // 4)  # its own mapping: given back to the system when freed
    probe = MemoryProbe.start(CPU)
    del held
    assert probe.peak_mb(lambda: None) == 0.0


def test_pages_mapped_from_files_are_not_the_steps_memory(tmp_path):
    """Library code the first backward maps in (~95 MiB of torch) is file-backed: not the model's.
    In a fresh process, as `suite profile` measures each model."""
    path = tmp_path / "library.so"
    path.write_bytes(b"\1" * (150 * MIB))
    script = f"""
import mmap, sys, time, torch
from suite.measure.memory import MIB, MemoryProbe
mapped = []
def step():
    with open({str(path)!r}, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    sum(m[i] for i in range(0, len(m), 4096))  # every page resident, as code that runs
    mapped.append(m)  # stays mapped, as a loaded library does
    x = torch.ones(50 * MIB // 4)
    time.sleep(0.05)
    del x
for method in ("cpu_rss_hwm", "cpu_rss_sampled"):
    probe = MemoryProbe(torch.device("cpu"), MemoryProbe.start(torch.device("cpu")).baseline, method)
    print(method, probe.peak_mb(step))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    peaks = dict(line.split() for line in done.stdout.splitlines())
    assert all(40 <= float(peak) <= 90 for peak in peaks.values()) and len(peaks) == 2, peaks


def test_what_torch_loads_on_first_use_is_not_a_models_training_memory():
    """The first optimizer a process makes imports torch._dynamo (sized in 4fd19d6): a
    tiny model's training step needs a few MiB, and its figure from a fresh process (as `suite
    profile` and a run measure) must not carry that import."""
    job = profile.ProfileJob("ran56_cifar", {"base_width": 4}, bench="train", img_size=8, device="cpu",
                             batch_size=2, warmup=1, steps=1, threads=1)
    row = profile.run_isolated(job)
    assert row.get("error") is None and row["memory_method"] == "cpu_rss_hwm", row
    assert row["train_peak_memory_mb"] < 30, row["train_peak_memory_mb"]


@pytest.mark.parametrize("faults,rounds", [
    ([5000, 0, 5000, 0, 0], 5),  # the heap grew again after one quiet round: the count starts over
    ([257, 256, 256], 3),  # at most SETTLED_FAULTS is quiet
    ([5000] * 12, 10),  # never settles: SETTLE_ROUNDS, then timing starts anyway
])  # fmt: skip
def test_the_heap_settles_after_two_quiet_rounds_in_a_row(monkeypatch, faults, rounds):
    from suite.measure import heap

    taken = iter(faults)
    total = [0]
    monkeypatch.setattr(heap, "page_faults", lambda: total[0])
    calls = []

    def step():
        calls.append(1)
        total[0] += next(taken)

    assert heap.SETTLED_FAULTS == 256 and heap.SETTLE_ROUNDS == 10
    assert heap.settle([step]) == rounds and len(calls) == rounds


def test_timed_steps_take_no_page_faults_and_the_memory_is_given_back_after():
    """Under glibc's defaults a 40 MiB tensor (above any mmap threshold glibc sets itself) is a
    fresh mapping, faulted in page by page at each step; in `steady_heap` the heap keeps them."""
    script = """
import resource, torch
from suite.measure.heap import settle, steady_heap
def step():
    xs = [torch.ones(10 * 2**20) for _ in range(3)]  # 3 x 40 MiB, written
def faults_per_step():  # the median over 5 steps: a heap that fragments may still grow once in a while
    settle([step])
    faults = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return sorted(faults)[2]
def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
default = faults_per_step()
with steady_heap() as steady:
    with steady_heap():
        pass  # nested: leaving it leaves the outer one in force
    kept = faults_per_step()
    held = rss_mib()
print(steady, default, kept, held, rss_mib())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    steady, default, kept, held, after = done.stdout.split()
    assert steady == "True"  # glibc (Linux): what these machines run
    assert float(default) > 3 * 10_000 and float(kept) < 100, (default, kept)  # 10,240 pages in 40 MiB
    assert float(held) - float(after) > 100, (held, after)  # the kept pages are returned afterwards
    # an allocator the user tuned is left alone, and said to be
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "1000000"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.split()[0] == "False", done.stderr


def test_sampled_peak_memory_fallback():
    probe = MemoryProbe(CPU, MemoryProbe.start(CPU).baseline, "cpu_rss_sampled")
    assert 170 <= probe.peak_mb(lambda: _allocate(200, hold=0.1)) <= 240


# ----------------------------------------------------------------------------- OOM back-off
class _OomAbove(nn.Module):
    def __init__(self, limit: int, error: Exception):
        super().__init__()
        self.limit, self.error, self.seen = limit, error, []
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        self.seen.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise self.error
        return self.fc(x.mean((2, 3)))


def test_decay_batch_step_follows_timm():
    sizes = [256]
    while sizes[-1] and len(sizes) < 20:  # bounded: a step that does not shrink fails here, not hangs
        sizes.append(decay_batch_step(sizes[-1]))
    assert sizes == [256, 192, 128, 96, 64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1, 0]


def test_out_of_memory_at_a_batch_of_one_is_raised_not_retried_with_none():
    tried = []

    def run(batch: int) -> None:
        tried.append(batch)
        if batch:  # an empty batch would "fit": never tried
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        with_batch_backoff(run, 4)
    assert tried == [4, 3, 2, 1]


@pytest.mark.parametrize(
    "error",
    [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
     RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB")],
)  # fmt: skip
def test_out_of_memory_backs_off_and_records_the_batch_used(error):
    model, s = _OomAbove(48, error), _settings(steps=2)
    timings, _ = profile.benchmark(model, ("infer", "train"), s, MemoryProbe.start(CPU), batch_size=256)
    assert timings["infer"].batch_size == timings["train"].batch_size == 48
    assert model.seen[:6] == [256, 192, 128, 96, 64, 48]
    assert timings["infer"].as_row("infer")["infer_batch_size"] == 48


def test_without_warm_up_steps_the_batch_still_backs_off():
    """With warmup=0 prepare still runs one untimed step inside the back-off: an out-of-memory
    error then shows at a batch that can shrink, not in the peak-memory or timed steps after it."""
    model, s = _OomAbove(48, RuntimeError("DefaultCPUAllocator: can't allocate memory")), _settings(warmup=0)
    prepared = prepare(functools.partial(inference_step, model, s=s), 256, s)
    assert prepared.batch_size == 48 and model.seen == [256, 192, 128, 96, 64, 48]


def test_a_reference_is_timed_at_the_batch_size_the_model_fitted():
    """The ratio compares the two at one batch size: the reference used to be timed at the batch
    asked for while the model had backed off to a smaller one."""
    error = RuntimeError("DefaultCPUAllocator: can't allocate memory")
    model, reference, s = _OomAbove(48, error), _OomAbove(1024, error), _settings(steps=2)
    timings, ratios = profile.benchmark(model, ("infer",), s, MemoryProbe.start(CPU), 256, lambda: reference)
    assert timings["infer"].batch_size == 48 and set(reference.seen) == {48} and ratios["infer"] > 0


def test_cuda_warm_up_and_timed_steps_run_autotuned_as_training(monkeypatch):
    """cuDNN picks its algorithms in the warm-up steps, as `suite train` (cudnn.benchmark) and timm do."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    tuned = []
    s = BenchSettings(torch.device("cuda", 1), 32, warmup=2)
    prepared = prepare(lambda batch: lambda: tuned.append(torch.backends.cudnn.benchmark), 4, s)
    prepared.step()
    assert tuned == [True, True, True]
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    prepare(lambda batch: lambda: tuned.append(torch.backends.cudnn.benchmark), 4, _settings())
    assert tuned[-1] is False  # the CPU's flags are left alone


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    # an out-of-memory error raised after an illegal access: the context is lost, a retry cannot help
    torch.cuda.OutOfMemoryError("CUDA out of memory; CUDA error: an illegal memory access was encountered"),
])  # fmt: skip
def test_illegal_memory_access_is_never_retried(error):
    assert not is_oom(error)
    model, s = _OomAbove(48, error), _settings()
    with pytest.raises(RuntimeError, match="illegal"):
        prepare(functools.partial(inference_step, model, s=s), 256, s)
    assert model.seen == [256]


# -------------------------------------------------------------------------------------- the CLI
def test_cli_prints_params_and_gmacs(capsys):
    assert main(["profile", "resnet26"]) == 0
    out = capsys.readouterr().out
    header, row = out.strip().splitlines()[-2:]
    assert [h.strip() for h in header.split("  ") if h][:4] == ["model", "params (M)", "GMACs", "activations (M)"]
    assert row.split()[:3] == ["resnet26", "13.70", "2.356"]


def test_cli_json_parses_with_timm_names(capsys):
    assert main(["profile", "resnet26", "model.num_classes=10", "--input-size", "64", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == "resnet26" and row["img_size"] == 64 and row["model_kwargs"] == "model.num_classes=10"
    assert row["params"] == 13696552 - 990 * 2049 and isinstance(row["params"], int)
    assert row["unsupported_ops"] == "" and row["counter"].startswith("fvcore 0.1.5")


def test_cli_bad_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's own error
        main(["profile", "resnet26", "--batch-size", "0", "--bench", "infer"])
    assert exit_.value.code == 2 and "--batch-size: must be at least 1" in capsys.readouterr().err
    assert main(["profile", "resnet2x"]) == 2
    assert "resnet26" in capsys.readouterr().err  # did you mean
    # every row times the reference: one that cannot take the input size stops the command up front,
    # named by the flag that gave the size (test_a_reference_too_small_is_advised_what_the_command_takes)
    assert main(["profile", "resnet26", "--reference", "san10_pairwise", "--input-size", "8", "--bench", "infer"]) == 2
    assert "error: --input-size: inputs of 8 px are too small" in capsys.readouterr().err
    assert main(["profile", "resnet26", "--reference", "resnet2x", "--bench", "infer"]) == 2
    assert "error: --reference: unknown model 'resnet2x'" in capsys.readouterr().err
    assert main(["profile", "ran56", "--input-size", "30"]) == 2  # named by the option that gave the size
    assert "--input-size: inputs of 30 px are too small" in capsys.readouterr().err
    assert main(["profile", "san10_pairwise", "--input-size", "64"]) == 2  # a check naming an option: as typed
    assert "error: model.padding: inputs of 64 px leave stage 4" in capsys.readouterr().err
    # counting complexity times nothing: a timing option would be ignored without a word
    assert main(["profile", "resnet26", "--amp", "bf16", "--channels-last", "--steps", "7"]) == 2
    assert "--amp, --channels-last, --steps only change timed measurements: add --bench" in capsys.readouterr().err
    assert main(["profile", "resnet26", "--amp", "bf16"]) == 2
    assert "--amp only changes timed measurements" in capsys.readouterr().err
    assert main(["models", "san10_*", "resnet2x"]) == 2  # one pattern that matches nothing is a mistake
    assert "unknown model 'resnet2x'" in capsys.readouterr().err


def test_a_reference_too_small_is_advised_what_the_command_takes(capsys):
    """`suite profile resnet26 --reference san10_pairwise --input-size 64` advised 'set padding to
    zeros', but model.padding=zeros goes to resnet26 as well, which refuses it, and nothing gives the
    reference an option alone: the advice is the input size that works. Where every profiled model
    has the option, model.KEY works, and is still what the error is keyed by."""
    argv = ["profile", "resnet26", "--reference", "san10_pairwise", "--input-size", "64", "--bench", "infer"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == ("error: --input-size: inputs of 64 px leave stage 4 a 2x2 map, too small to reflect-pad by 3 px "
                   "(the reference, san10_pairwise); use inputs of 128 px or more (the option padding would go "
                   "to resnet26 too, which has no such option)\n"), err
    with pytest.raises(SuiteError, match="model 'resnet26' has no option 'padding'"):  # the advice it gave before:
        resolve_model_kwargs("resnet26", {"padding": "zeros"}, input_size=64)  # resnet26's row, in its child
    for name in ("resnet26", "ran56_cifar", "san10_pairwise"):  # what it advises now: each takes 128 px
        resolve_model_kwargs(name, {}, input_size=128)
    with pytest.raises(TooSmall) as small:  # what carries the size: pickled (a SLURM job's error) as any other
        resolve_model_kwargs("san10_pairwise", {}, input_size=64)
    assert str(pickle.loads(pickle.dumps(small.value))) == str(small.value) and small.value.smallest == 128
    assert len(profile.plan(["resnet26"], reference="san10_pairwise", bench="infer", img_size=128)) == 2
    assert main(["profile", "ran56_cifar", "--reference", "san10_pairwise", "--bench", "infer"]) == 2  # its 32 px
    assert "error: --reference: inputs of 32 px leave stage 3 a 2x2 map, too small to reflect-pad by 3 px (the " \
           "reference, san10_pairwise); use inputs of 128 px or more (the option padding would go to ran56_cifar" \
           in capsys.readouterr().err

    # a SAN profiled against a SAN: model.padding=zeros reaches both, so that advice stands, keyed so
    with pytest.raises(SuiteError) as refused:
        profile.plan(["san10_patchwise"], reference="san10_pairwise", bench="infer", img_size=64)
    assert str(refused.value).startswith("model.padding: inputs of 64 px leave stage 4") and \
        "set padding to 'zeros' or use inputs of at least 128 px (the reference, san10_pairwise)" in str(refused.value)
    jobs = profile.plan(["san10_patchwise"], reference="san10_pairwise", bench="infer", img_size=64,
                        model_kwargs={"padding": "zeros"})
    assert [(j.model, j.model_kwargs) for j in jobs] == [("san10_pairwise", {"padding": "zeros"}),
                                                         ("san10_patchwise", {"padding": "zeros"})]


def test_cli_models_names_each_model_as_the_papers_and_reports_do(capsys):
    """The registry name beside the one the report tables show for it."""
    assert main(["models", "ran92_cifar", "san10_pairwise"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("params (M)  paper name")
    assert lines[1].startswith("ran92_cifar ") and lines[1].endswith("  Attention-92")
    assert lines[2].startswith("san10_pairwise ") and lines[2].endswith("  SAN10-pair.")


def test_cli_models_lists_options_as_a_spec_writes_them(capsys):
    """What `--options` shows can be pasted into a spec or an override as it stands."""
    assert main(["models", "resnet26", "ran56", "--options"]) == 0
    out = capsys.readouterr().out
    assert "    zero_init_residual = false\n" in out
    assert "    mask_type = encoder_decoder  {encoder_decoder, local}\n" in out


def test_cli_to_takes_json_from_the_suffix_in_any_case(tmp_path, capsys):
    out = tmp_path / "rows.JSON"
    assert main(["profile", "resnet26", "--input-size", "64", "--to", str(out)]) == 0
    assert json.loads(out.read_text())[0]["model"] == "resnet26"


def test_one_failing_child_does_not_stop_the_others(capsys):
    """zero_init_residual exists for ResNets only: the RAN child fails, the ResNet child works."""
    assert main(["profile", "resnet26", "ran56_cifar", "model.zero_init_residual=true", "--json"]) == 1
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert "error" not in rows["resnet26"] and rows["resnet26"]["params"] == 13696552
    assert "zero_init_residual" in rows["ran56_cifar"]["error"]


def test_a_batch_of_one_that_batch_norm_cannot_train_names_the_setting():
    config = resolve({"model.name": "ran56_cifar", "model.base_width": 4, "data.name": "digits", "data.input_size": 4,
                      "measure.batch_size": 1, "measure.warmup": 1, "measure.steps": 1})
    with pytest.raises(SuiteError, match="one value per channel") as err:
        profile.measure_run(config)
    assert err.value.key == "measure.batch_size"
    (row,) = profile.profile(profile.plan(["ran56_cifar"], bench="train", img_size=4, batch_size=1, warmup=1, steps=1))
    # `suite profile`'s row names the flag that set it, as its other errors do
    assert row["error"].startswith("--batch-size: a batch of 1 cannot train this model")
    with pytest.raises(SuiteError, match="^batch_size: a batch of 1 cannot train this model"):  # from Python
        profile.profile_model(profile.ProfileJob("ran56_cifar", bench="train", img_size=4, batch_size=1, warmup=1,
                                                 steps=1))


def test_a_crashed_child_becomes_an_error_row(monkeypatch):
    real = profile.child_command
    crash = [sys.executable, "-c", "import os; os._exit(3)"]
    monkeypatch.setattr(profile, "child_command", lambda job: crash if job.model == "resnet38" else real(job))
    rows = profile.profile(profile.plan(["resnet38", "resnet26"]))
    assert "exit status 3" in rows[0]["error"]
    assert rows[1]["model"] == "resnet26" and rows[1]["gmacs"] == pytest.approx(2.355553, abs=1e-6)


def test_every_ratio_has_its_reference_row():
    """ran56_cifar's ratio is against resnet26 at 32 px, resnet38's at 224 px: both rows are printed."""
    jobs = profile.plan(["ran56_cifar", "resnet38", "ran92_cifar"], reference="resnet26", bench="infer",
                        model_kwargs={"num_classes": 10, "mask_norm": "spatial"})
    assert [(j.model, j.img_size, j.reference) for j in jobs] == [
        ("resnet26", 32, None), ("resnet26", 224, None),
        ("ran56_cifar", None, "resnet26"), ("resnet38", None, "resnet26"), ("ran92_cifar", None, "resnet26")]
    # the reference rows are built as the ratios build it: with the options it has
    assert jobs[0].model_kwargs == {"num_classes": 10} and jobs[2].model_kwargs["mask_norm"] == "spatial"
    assert [j.is_reference for j in jobs] == [True, True, False, False, False]
    (ref, row) = profile.plan(["resnet26", "ran56_cifar"], reference="resnet26", bench="infer", img_size=64)
    assert (ref.model, ref.img_size, row.model) == ("resnet26", 64, "ran56_cifar")
    # the reference alone: still its row with ratio 1 (the row carried no ratio when no other model asked)
    [only] = profile.plan(["resnet26"], reference="resnet26", bench="infer", img_size=64)
    assert (only.model, only.is_reference, only.reference) == ("resnet26", True, None)


def test_the_reference_alone_has_its_row_with_ratio_one():
    jobs = profile.plan(["ran56_cifar"], reference="ran56_cifar", bench="infer", img_size=32, batch_size=2, warmup=1,
                        steps=1, threads=1, model_kwargs={"base_width": 4})
    [row] = profile.profile(jobs)
    assert row["reference"] == "ran56_cifar" and row["infer_throughput_vs_reference"] == 1.0


def _rows_until_interrupted(monkeypatch):
    """run_isolated stubbed: resnet26 finishes, the next model is interrupted."""
    def fake(job):
        if job.model != "resnet26":
            raise KeyboardInterrupt
        return {"model": job.model, "model_kwargs": "", "params": 1}

    monkeypatch.setattr(profile, "run_isolated", fake)


def test_interrupted_profile_keeps_the_finished_rows(monkeypatch, tmp_path, capsys):
    _rows_until_interrupted(monkeypatch)
    assert main(["profile", "resnet26", "resnet38", "--json"]) == 130
    out, err = capsys.readouterr()
    assert [r["model"] for r in json.loads(out)] == ["resnet26"]
    assert "partial: interrupted after 1 of 2 models" in err
    out_file = tmp_path / "p.csv"
    assert main(["profile", "resnet26", "resnet38", "--to", str(out_file)]) == 130
    out = capsys.readouterr().out
    assert "partial: interrupted after 1 of 2 models" in out and f"wrote 1 row to {out_file} (partial)" in out
    assert list(pd.read_csv(out_file)["model"]) == ["resnet26"]
    out_file.write_text("model,params\nresnet26,1\nresnet38,2\n")  # a complete table from an earlier run
    assert main(["profile", "resnet26", "resnet38", "--to", str(out_file)]) == 130
    beside = tmp_path / "p.partial.csv"
    assert f"wrote 1 row to {beside} (partial; {out_file} is left as it was)" in capsys.readouterr().out
    assert list(pd.read_csv(out_file)["model"]) == ["resnet26", "resnet38"]
    assert list(pd.read_csv(beside)["model"]) == ["resnet26"]


def test_a_bad_out_fails_before_profiling_and_a_failed_write_keeps_the_rows(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(profile, "profile", lambda jobs: pytest.fail("profiled although --to is unusable"))
    afile, adir = tmp_path / "afile", tmp_path / "adir"
    afile.write_text("")
    adir.mkdir()
    for out in ("/dev/null/x.csv", afile / "x.json", adir):
        assert main(["profile", "resnet26", "resnet38", "--to", str(out)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {out}: --to: ")
    # a write that fails anyway (here: the check is skipped) is an error too, after the table is shown
    monkeypatch.setattr(profile, "profile", lambda jobs: [{"model": j.model, "params": 1} for j in jobs])
    monkeypatch.setattr(profile, "check_out", lambda path: None)
    assert main(["profile", "resnet26", "resnet38", "--to", str(adir)]) == 2
    out, err = capsys.readouterr()
    assert "resnet38" in out and err.startswith(f"error: {adir}: --to: cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]  # no adir.tmp


PROFILE_PARENT = """\
import signal
import sys

from suite.cli import main
from suite.measure import profile

signal.signal(signal.SIGINT, signal.default_int_handler)  # as on a terminal, even if started with SIGINT ignored
pidfile, out = sys.argv[1:]
DONE = [sys.executable, "-c", "print('--result'); print('{\\"model\\": \\"resnet26\\", \\"params\\": 1}')"]
HANG = [sys.executable, "-c", f"import os, time; open({pidfile!r} + '.tmp', 'w').write(str(os.getpid())); "
        f"os.rename({pidfile!r} + '.tmp', {pidfile!r}); time.sleep(120)"]
profile.child_command = lambda job: DONE if job.model == "resnet26" else HANG
sys.exit(main(["profile", "resnet26", "resnet38", "--to", out]))
"""


@pytest.mark.parametrize("how, status", [("sigterm", 143), ("ctrl-c", 130)])
def test_stopping_profile_stops_its_child_and_keeps_the_finished_rows(tmp_path, how, status):
    pidfile, out = tmp_path / "child.pid", tmp_path / "p.csv"
    log = tmp_path / "log.txt"  # a file, not a pipe: an orphaned child would hold a pipe open
    with log.open("w") as log_file:
        parent = subprocess.Popen([sys.executable, "-c", PROFILE_PARENT, str(pidfile), str(out)], text=True,
                                  stdout=log_file, stderr=log_file, start_new_session=True)
    pid = None
    try:
        wait_for(pidfile.exists, "the second model's child to start")
        pid = int(pidfile.read_text())
        if how == "sigterm":
            parent.send_signal(signal.SIGTERM)  # the parent only, as `kill PID` does
        else:
            os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        assert parent.wait(timeout=120) == status, log.read_text()
        wait_for(lambda: not alive(pid), "the child to be stopped")
        assert "partial: interrupted after 1 of 2 models" in log.read_text()
        assert list(pd.read_csv(out)["model"]) == ["resnet26"] and not out.with_name("p.csv.tmp").exists()
    finally:
        for proc_id in (parent.pid, pid):
            if proc_id is not None and alive(proc_id):
                os.kill(proc_id, signal.SIGKILL)
        parent.wait()


def test_device_and_warmup_are_checked_in_every_mode(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse: the same rule as the check
        main(["profile", "resnet26", "--bench", "infer", "--warmup", "0"])
    assert exit_.value.code == 2 and "--warmup: must be at least 1" in capsys.readouterr().err
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: an unavailable device cannot be asked for")
    assert main(["profile", "resnet26", "--device", "cuda"]) == 2  # complexity only: still a mistake
    assert "device: device 'cuda' requested but CUDA is not available" in capsys.readouterr().err


def test_a_device_is_one_the_suite_runs_on_and_this_machine_has(monkeypatch):
    from suite.measure.env import resolve_device
    from suite.train.distributed import _device

    with pytest.raises(SuiteError, match=r"device: invalid device 'tpu' \(valid: auto, cpu, cuda, cuda:N\)"):
        resolve_device("tpu")  # a device type torch knows but the suite does not run on
    assert resolve_device("cpu:0") == torch.device("cpu", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a 2-GPU host, as far as the check sees
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(SuiteError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\) \(valid: cuda:0, cuda:1\)"):
        resolve_device("cuda:2")
    assert _device("cuda", local_rank=1) == torch.device("cuda", 1)  # each rank its own GPU
    assert _device("auto", local_rank=0) == torch.device("cuda", 0)


def test_an_auto_run_given_gpus_torch_cannot_see_says_it_runs_on_the_cpu(monkeypatch):
    """A SLURM job given GPUs (the local cluster's fake ones, or a CPU-only torch on a real node)
    trained on the CPU without a word: the result was only slow."""
    from suite.measure.env import unseen_gpus

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert "given GPUs (CUDA_VISIBLE_DEVICES is set) but torch" in unseen_gpus("auto")
    assert "device auto runs on the CPU" in unseen_gpus(None)
    assert unseen_gpus("cpu") is None  # asked for: nothing to say
    for none in ("", "-1", "NoDevFiles"):  # no GPU given
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", none)
        assert unseen_gpus("auto") is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert unseen_gpus("auto") is None  # auto takes the GPU


def test_a_cuda_row_records_the_gpu_and_the_cuda_software_it_ran_under(monkeypatch, tmp_path):
    from suite.measure import env

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"GPU {index}")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  "
                      "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\nGCC version:  gcc version 12\n")
    monkeypatch.setattr(env, "NVIDIA_DRIVER", str(driver))
    row = env.environment("cuda:1")
    assert (row["device"], row["device_name"]) == ("cuda:1", "GPU 1")
    assert (row["cuda_version"], row["cudnn_version"], row["gpu_driver"]) == ("12.4", 90100, "550.54.14")
    assert env.environment("cuda")["device"] == "cuda:0"
    monkeypatch.setattr(env, "NVIDIA_DRIVER", str(tmp_path / "missing"))  # no NVIDIA driver in /proc (WSL)
    assert env.environment("cuda")["gpu_driver"] is None
    assert "cuda_version" not in env.environment("cpu")  # CPU rows as they were


def test_a_rank_bound_to_one_gpu_takes_that_one(monkeypatch):
    from suite.train.distributed import _device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # SLURM --gpus-per-task: each task sees its own
    assert _device("cuda", local_rank=3) == torch.device("cuda", 0)
    assert _device("auto", local_rank=1) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # more processes than the node's GPUs
    assert _device("cuda", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(SuiteError, match=r"device: process 2 of this node has no GPU of its own: it sees 2 GPUs"):
        _device("auto", local_rank=2)


@pytest.mark.slow
def test_cli_timing_run_in_subprocesses_with_reference(capsys):
    argv = ["profile", "resnet164_cifar", "--bench", "all", "--batch-size", "2", "--warmup", "1", "--steps", "2",
            "--threads", "1", "--reference", "ran56_cifar", "--json"]  # fmt: skip
    assert main(argv) == 0
    ref, row = json.loads(capsys.readouterr().out)
    assert ref["model"] == "ran56_cifar" and ref["infer_throughput_vs_reference"] == 1.0
    assert row["reference"] == "ran56_cifar" and row["threads"] == 1 and row["memory_method"] == "cpu_rss_hwm"
    for phase in ("infer", "train"):
        assert row[f"{phase}_batch_size"] == 2 and row[f"{phase}_samples_per_sec"] > 0
        assert math.isfinite(row[f"{phase}_throughput_vs_reference"])
        assert row[f"{phase}_peak_memory_mb"] > 0
    assert row["peak_memory_mb"] >= row["infer_peak_memory_mb"]


def test_a_single_model_that_fails_to_build_is_a_row_not_a_traceback(capsys):
    """One model's complexity runs in this process; a failure there reads as it does from a child."""
    assert main(["profile", "ran56_cifar", "model.base_width=99999999999999999999"]) == 1
    out, err = capsys.readouterr()
    assert "error: ran56_cifar: TypeError: " in err and "Traceback" not in out + err
    assert "frame #" not in out + err  # only the first line of PyTorch's message


def test_profile_children_import_the_suite_that_started_them(tmp_path, monkeypatch):
    """As runs do (processes.suite_env): `python -m suite.measure.profile` in a folder holding a
    `suite/` would otherwise import that one."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "__init__.py").write_text("raise SystemExit('imported the suite of the working folder')\n")
    monkeypatch.chdir(tmp_path)
    row = profile.run_isolated(profile.ProfileJob("resnet26", img_size=32, device="cpu", threads=1))
    assert row.get("error") is None and row["params"] > 0
