"""SAN models: official structure, parameter counts, options, checkpoint mapping, FLOPs."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suite.errors import SuiteError
from suite.measure.complexity import count_params
from suite.models import create_model, get_model_info, list_models, load_official_san, resolve_model_kwargs, san
from suite.models.official import official_to_suite_key, suite_to_official_key
from suite.ops import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, use_backend
from suite.ops.gamma import LOG2_E

SAN_MODELS = ["san10_pairwise", "san10_patchwise", "san15_pairwise", "san15_patchwise", "san19_pairwise",
              "san19_patchwise"]
# Exact parameter counts of the official model/san.py at 1000 classes, counted by instantiating it.
OFFICIAL_PARAMS = {
    "san10_pairwise": 10_531_848, "san10_patchwise": 11_841_124,
    "san15_pairwise": 14_065_436, "san15_patchwise": 16_181_310,
    "san19_pairwise": 17_596_156, "san19_patchwise": 20_518_470,
}
LAYERS = {10: (2, 1, 2, 4, 1), 15: (3, 2, 3, 5, 2), 19: (3, 3, 4, 6, 3)}


def test_registry_lists_every_san_model_with_its_paper_figures():
    assert list_models("san*") == sorted(SAN_MODELS)
    info = get_model_info("san10_patchwise")
    assert info.input_size == 224
    assert info.paper["params_m"] == 11.8 and info.paper["gmacs"] == 1.9
    assert info.paper["top1_err"] == pytest.approx(22.9) and info.paper["top5_err"] == pytest.approx(6.5)


@pytest.mark.parametrize("name", SAN_MODELS)
def test_parameter_counts_match_the_official_code(name):
    assert count_params(name) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("footprint,patch_params", [(3, 10_742_564), (5, 11_181_988), (7, 11_841_124), (9, 12_719_972)])
def test_footprint_sweep_parameters(footprint, patch_params):
    """As in the official code: pairwise params do not depend on k; patchwise 10.74 / 11.18 / 11.84 / 12.72 M."""
    assert count_params("san10_pairwise", footprint=footprint) == 10_531_848
    assert count_params("san10_patchwise", footprint=footprint) == patch_params
    assert round(patch_params / 1e6, 2) == {3: 10.74, 5: 11.18, 7: 11.84, 9: 12.72}[footprint]


def _san_params(depth: int, mode: str, relation: str, gamma: str = "official", share: int = 8, k: int = 7,
                position: bool = True, classes: int = 1000) -> int:
    """Parameters of a SAN from the official widths, written out block by block: phi, psi (C -> C/16)
    and beta (C -> C/4) with bias; gamma's input is delta's width (+2 position channels pairwise),
    its hidden width C/16 pairwise and C/4/share patchwise, its output C/4/share attention channels
    (times K patchwise). Stage 0 keeps a 3x3 footprint."""
    def gamma_params(n_in: int, hidden: int, out: int) -> int:
        if gamma == "official":  # BN - ReLU - conv (no bias) - BN - ReLU - conv
            return 2 * n_in + n_in * hidden + 2 * hidden + hidden * out + out
        if gamma == "linear":
            return n_in * out + out
        extra = hidden * hidden + hidden if gamma == "lrlrl" else 0
        return n_in * hidden + hidden + extra + hidden * out + out

    total, cin = 3 * 64 + 2 * 64, 64  # stem conv (no bias) + BN
    for i, (c, n) in enumerate(zip((64, 256, 512, 1024, 2048), LAYERS[depth])):
        total += cin * c + 2 * c  # transition conv (no bias) + the stage's BN
        rel, mid, kk = c // 16, c // 4, (3 if i == 0 else k) ** 2
        cw = mid // share
        if mode == "pairwise":
            width = {"concatenation": 2 * rel, "dot": 1}.get(relation, rel) + (2 if position else 0)
            sam = gamma_params(width, rel, cw) + (6 if position else 0)  # conv_p: 2 -> 2 with bias
        else:
            width = {"concatenation": (kk + 1) * rel, "star": kk, "clique": kk * kk}[relation]
            sam = gamma_params(width, cw, kk * cw)
        block = 2 * c + 2 * (c * rel + rel) + c * mid + mid + sam + 2 * mid + mid * c + c
        total += n * block
        cin = c
    return total + 2048 * classes + classes


@pytest.mark.parametrize("name", SAN_MODELS)
def test_parameter_counts_follow_the_official_widths(name):
    depth, mode = int(name[3:5]), name.split("_")[1]
    assert _san_params(depth, mode, "subtraction" if mode == "pairwise" else "concatenation") == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name,options", [
    ("san10_pairwise", {"relation": r}) for r in ("summation", "concatenation", "hadamard", "dot")
] + [("san10_patchwise", {"relation": r}) for r in ("star", "clique")] + [
    (f"san10_{mode}", {"gamma": g}) for mode in ("pairwise", "patchwise") for g in ("linear", "lrl", "lrlrl")
] + [(f"san10_{mode}", {"share_planes": s}) for mode in ("pairwise", "patchwise") for s in (1, 2, 4, 16)] + [
    ("san10_pairwise", {"position_encoding": "none"}), ("san10_patchwise", {"footprint": 9, "share_planes": 4}),
    ("san15_patchwise", {"relation": "star"}), ("san19_patchwise", {"relation": "clique", "footprint": 3}),
    ("san15_patchwise", {"gamma": "lrlrl", "share_planes": 4}), ("san19_pairwise", {"relation": "dot", "footprint": 9}),
    ("san10_patchwise", {"num_classes": 10}), ("san19_patchwise", {"num_classes": 100}),
])
def test_variant_parameter_counts_follow_their_widths(name, options):
    """Every relation, gamma and share_planes variant of SAN10, SAN15/19 at non-default settings, and
    heads other than ImageNet's (the digits and CIFAR runs) have the widths their definition gives,
    at their depth's layers and with their classifier (a wrong width in gamma's input, hidden or
    output layer changes the count)."""
    depth, mode = int(name[3:5]), name.split("_")[1]
    default = "subtraction" if mode == "pairwise" else "concatenation"
    expected = _san_params(depth, mode, options.get("relation", default), options.get("gamma", "official"),
                           options.get("share_planes", 8), options.get("footprint", 7),
                           options.get("position_encoding", "relative") != "none", options.get("num_classes", 1000))
    assert count_params(name, **options) == expected


@pytest.mark.parametrize("name", SAN_MODELS)
def test_forward_at_224(name):
    model = create_model(name).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_small_odd_input_needs_zero_padding():
    x = torch.randn(2, 3, 45, 37)
    model = create_model("san10_pairwise", padding="zeros", num_classes=10).eval()
    with torch.inference_mode():
        assert model(x).shape == (2, 10)
    model = create_model("san10_pairwise", num_classes=10).eval()
    with pytest.raises(SuiteError) as err, torch.inference_mode():
        model(x)
    assert err.value.key == "padding" and "padding='zeros'" in str(err.value)


@pytest.mark.parametrize("shape", [(224, 20), (31, 31)])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_an_input_pooled_to_nothing_is_said_by_size_with_or_without_autograd(shape, padding):
    model = create_model("san10_pairwise", padding=padding, num_classes=10)
    for grad in (False, True):  # inference, and a training step
        model.train(grad)
        with torch.set_grad_enabled(grad), pytest.raises(SuiteError, match=f"inputs of {shape[0]}x{shape[1]} px "
                                                                          "are too small.* at least 32 px"):
            model(torch.randn(2, 3, *shape))


def _train_step_grads(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad()
    F.cross_entropy(model(x), torch.arange(x.shape[0]) % 5).backward()
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("name,relation,options", [("san10_pairwise", r, {}) for r in PAIRWISE_RELATIONS]
                         + [("san10_patchwise", r, {}) for r in PATCHWISE_RELATIONS]
                         + [("san10_pairwise", r, {"position_encoding": "absolute", "padding": padding})
                            for r, padding in (("subtraction", "zeros"), ("subtraction", "reflect"),
                                               ("concatenation", "reflect"))]
                         + [("san10_pairwise", r, {"transforms": t}) for r, t in (("subtraction", "shared_relation"),
                                                                                   ("hadamard", "shared"),
                                                                                   ("dot", "shared_relation"))]
                         + [("san10_patchwise", r, {"transforms": t}) for r, t in (("concatenation", "shared"),
                                                                                    ("concatenation", "shared_relation"),
                                                                                    ("star", "shared"))])
def test_every_relation_trains(name, relation, options):
    torch.manual_seed(0)
    # float64 at 64 px: BN over 1x1 late-stage maps (32 px) would amplify rounding a million-fold
    model = create_model(name, relation=relation, footprint=3, num_classes=5, **{"padding": "zeros", **options}).double()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    grads = _train_step_grads(model, x)
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # Every weight learns. (Some biases get a zero gradient by design, as in the official model: a
    # bias before a training-mode BN, gamma's last bias before the softmax, conv_p's in p_i - p_j.)
    assert all(g.abs().sum() > 0 for n, g in grads.items() if n.endswith("weight")), relation
    if options.get("position_encoding") == "absolute" and options["padding"] == "zeros":
        # p_i - p_j cancels conv_p's bias b, and so does gamma's training-mode BN when every p_j has it
        # (reflection); with zero padding p_j = A g_j + b inside the map and 0 outside: b matters
        assert all(g.abs().sum() > 0 for n, g in grads.items() if n.endswith("position.bias"))
    # The reference backend computes the same gradients.
    with use_backend("unfold"):
        reference = _train_step_grads(model, x)
    scale = max(g.abs().max() for g in grads.values())
    for n in grads:
        assert torch.allclose(grads[n], reference[n], atol=1e-9 * scale, rtol=1e-7), n


@pytest.mark.parametrize(("name", "relation", "options"),
                         [("san10_pairwise", "subtraction", {}), ("san10_patchwise", "star", {}),
                          ("san10_patchwise", "concatenation", {}),
                          ("san10_patchwise", "concatenation", {"gamma": "lrlrl"}),
                          ("san10_pairwise", "subtraction", {"position_encoding": "absolute"})])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])  # reflection padding runs in float32 under autocast
def test_bfloat16_autocast_trains_and_infers(name, relation, options, padding):
    torch.manual_seed(0)
    model = create_model(name, relation=relation, footprint=3, padding=padding, num_classes=5, **options)
    x = torch.randn(2, 3, 64, 64)  # 2x2 maps in the last stage: reflection padding needs more than 1 px
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x), torch.arange(2))
    loss.backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.inference_mode():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected, atol=0.02 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_memory_light_training_updates_bn_statistics_once(name, momentum):
    """The fused BN-ReLU-conv and stem ops keep BN running statistics and step counts exact."""
    torch.manual_seed(0)
    model = create_model(name, footprint=3, num_classes=5).double()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = momentum
    reference = copy.deepcopy(model)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for _ in range(2):
        _train_step_grads(model, x)
        with use_backend("unfold"):
            _train_step_grads(reference, x)
    ours, theirs = model.state_dict(), reference.state_dict()
    for key in ours:
        assert torch.allclose(ours[key].double(), theirs[key].double(), atol=1e-10), key


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
def test_training_keeps_far_less_for_backward(name):
    """Autograd keeps neither the value neighbourhoods nor gamma's K-fold wide activations."""

    def saved_bytes(backend: str) -> int:
        sam = create_model(name).stages[1].blocks[0].sam.train()
        x = torch.randn(2, 256, 20, 20, requires_grad=True)
        storages = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with use_backend(backend), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sam(x)
        return sum(storages.values())

    # One relation-sized tensor (N * C/16 * K * H*W floats) is 0.3 MiB here.
    assert saved_bytes("shift") < 0.3 * saved_bytes("unfold")


@pytest.mark.parametrize(
    "name,relation,gamma,options",
    [("san10_pairwise", "subtraction", g, {}) for g in ("official", "linear", "lrl", "lrlrl")]
    + [("san10_pairwise", "concatenation", "official", {}), ("san10_pairwise", "dot", "lrl", {}),
       ("san10_patchwise", "concatenation", "official", {}), ("san10_patchwise", "concatenation", "linear", {}),
       ("san10_patchwise", "concatenation", "lrlrl", {}),
       ("san10_patchwise", "star", "official", {}),
       ("san10_pairwise", "subtraction", "official", {"position_encoding": "absolute"}),
       ("san10_pairwise", "concatenation", "lrl", {"position_encoding": "absolute", "padding": "zeros"}),
       ("san10_pairwise", "subtraction", "official", {"transforms": "shared_relation"}),
       ("san10_pairwise", "concatenation", "official", {"transforms": "shared"}),
       ("san10_pairwise", "dot", "lrl", {"transforms": "shared"}),
       ("san10_patchwise", "concatenation", "official", {"transforms": "shared_relation"}),
       ("san10_patchwise", "concatenation", "official", {"transforms": "shared"}),
       ("san10_patchwise", "clique", "official", {"transforms": "shared_relation"})],
)
def test_eval_matches_the_materialised_reference(name, relation, gamma, options, monkeypatch):
    """Inference runs gamma piecewise with folded BNs, the stem image by image, pooling on views;
    with shared transformations it is also checked against the plain modules (autograd on)."""
    import suite.models.san

    monkeypatch.setattr(suite.models.san, "_STEM_BAND_ELEMENTS", 1)  # bands of two rows
    torch.manual_seed(0)
    model = create_model(name, relation=relation, gamma=gamma, footprint=5, num_classes=7, **options)
    for module in model.modules():  # non-trivial BN statistics, so the folding is exercised
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(2, 3, 161, 129)  # odd sizes: pooling floors
    with torch.inference_mode():
        out = model(x)
        with use_backend("unfold"):
            reference = model(x)
    assert torch.allclose(out, reference, atol=1e-5, rtol=1e-4), (out - reference).abs().max()
    if "transforms" in options:  # the third path: every module called, the shift ops, autograd on
        plain = model(x).detach()
        assert torch.allclose(out, plain, atol=1e-5, rtol=1e-4), (out - plain).abs().max()


def test_eval_with_widely_spread_attention_logits_matches_the_reference():
    """Logits spread far beyond float32's exp2 range (a sharply attending gamma) take the shifted
    softmax and still match the reference; scaled moderately they take the unshifted one."""
    torch.manual_seed(0)
    model = create_model("san10_pairwise", footprint=5, num_classes=7).eval()
    x = torch.randn(2, 3, 96, 112)
    lasts = [m.gamma[-1] for m in model.modules() if isinstance(m, san.SelfAttention)]
    for scale, wide in ((20.0, False), (100.0, True)):  # at initialisation the spreads are about 1
        for conv in lasts:
            conv.weight.data.mul_(scale)
        # each layer's largest |logit| and spread in base 2, seen through hooks (which take the plain path)
        largest, spread = [], []

        def record(module, inputs, logits):
            largest.append(float(logits.abs().amax()) * LOG2_E)
            spread.append(float(logits.amax() - logits.amin()) * LOG2_E)

        hooks = [conv.register_forward_hook(record) for conv in lasts]
        with torch.no_grad():
            model(x)
        for hook in hooks:
            hook.remove()
        # float32's bound is about 122 for these footprints: all inside it, or some far beyond
        assert (max(largest) > 200 if wide else max(largest) < 100) and min(spread) > 1
        with torch.inference_mode():
            out = model(x)
            with use_backend("unfold"):
                reference = model(x)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)


def test_float16_training_gives_finite_gradients_as_eager_pytorch_does():
    """BN's backward coefficients overflowed in float16 (scale * invstd * grad_weight before the
    division by the element count): inf, then NaN gradients, where the unfold path had none."""
    import copy

    from suite.models.san import Stem

    torch.manual_seed(0)
    stem, x = Stem().half(), torch.randn(2, 3, 32, 32).half()
    grads = {}
    for backend in ("shift", "unfold"):
        model = copy.deepcopy(stem)
        with use_backend(backend):
            model(x).float().square().sum().backward()
        grads[backend] = model.conv.weight.grad.float()
    assert torch.isfinite(grads["shift"]).all()
    torch.testing.assert_close(grads["shift"], grads["unfold"], rtol=0.05, atol=0.05 * grads["unfold"].abs().max().item())
    model = create_model("san10_pairwise", padding="zeros", num_classes=10).half()
    model(torch.randn(1, 3, 64, 64).half()).float().square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_inference_weights_share_one_buffer_across_layers_and_modes():
    """Every layer's inference weights go to one buffer of the model's, not a fresh mapping each;
    it goes when the model trains, and copies of the model get their own."""
    import copy
    import gc
    import weakref

    model = create_model("san10_pairwise", padding="zeros", num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        first = model(x)
    buffer = model.workspace.buffers()["weights"]
    # the largest layer's weights: stage 1, K * N * Cw * H * W = 49 * 2 * 8 * 16 * 16
    assert buffer.numel() == 49 * 2 * 8 * 16 * 16
    with torch.no_grad():  # a buffer made under inference_mode could not be written here
        again = model(x)
    assert model.workspace.buffers()["weights"] is buffer and torch.equal(first, again)
    with torch.no_grad():
        model(torch.cat([x, x]))
    assert model.workspace.buffers()["weights"].numel() == 2 * buffer.numel()

    twin = copy.deepcopy(model)
    assert twin.workspace is not model.workspace and twin.workspace.buffers() == {}
    gone = weakref.ref(model.workspace.buffers()["weights"])
    del buffer
    model.train()  # training never uses them: their memory goes back
    gc.collect()
    assert gone() is None and model.workspace.buffers() == {}
    with torch.no_grad():
        assert torch.equal(model.eval()(x), first)  # buffers made afresh
    twin_gone = weakref.ref(twin.workspace.get("weights", (4,), x))
    del twin
    gc.collect()
    assert twin_gone() is None  # a model's buffers go with it
    model.train()(x).sum().backward()  # maps under 16 px aggregate on a grid: not the workspace's in training
    assert model.workspace.buffers() == {}


def test_inference_in_place_paths_respect_callers_and_hooks():
    """Inference adds each block's branch into the stage's own tensor and fuses BN1-ReLU into SAM's
    input conv; a block called directly leaves its input alone, and hooks on a block or its SAM fire
    and see tensors that nothing overwrites afterwards."""
    torch.manual_seed(0)
    model = create_model("san10_pairwise", padding="zeros", num_classes=7).double().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.inference_mode():
        plain = model(x)
        with use_backend("unfold"):  # every module called as a module, nothing in place
            reference = model(x)
    torch.testing.assert_close(plain, reference)

    block = model.stages[1].blocks[0]
    features = torch.randn(2, 256, 16, 16, dtype=torch.float64)
    kept = features.clone()
    with torch.inference_mode():
        out = block(features)
        with use_backend("unfold"):
            expected = block(features)
    assert torch.equal(features, kept)
    torch.testing.assert_close(out, expected)

    seen = []

    def keep(module, args, output):
        seen.append((args[0], args[0].clone(), output, output.clone()))

    handles = [block.register_forward_hook(keep), model.stages[3].blocks[2].sam.register_forward_hook(keep)]
    try:
        with torch.inference_mode():
            hooked = model(x)
    finally:
        for handle in handles:
            handle.remove()
    assert len(seen) == 2
    for args, args_then, output, output_then in seen:
        assert torch.equal(args, args_then) and torch.equal(output, output_then)
    torch.testing.assert_close(hooked, plain)

def _randomise_bn(model):
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


_TRAINING_CASES = ("frozen_bn_in_training", "untracked_statistics_in_training", "no_affine_in_training")


def _set_bn(model, case):
    """BN states the fused paths do not implement; returns whether the case is a training one."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            if case == "frozen_bn_in_training":
                module.eval()
            elif case == "batch_statistics_in_eval":
                module.train()
            elif case == "no_running_statistics":
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None
            elif case == "untracked_statistics_in_training":  # batch statistics, the running ones kept as they are
                module.track_running_stats = False
            elif case == "no_affine_in_training":
                module.affine, module.weight, module.bias = False, None, None
    return case in _TRAINING_CASES


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
@pytest.mark.parametrize("case", [*_TRAINING_CASES, "batch_statistics_in_eval", "no_running_statistics"])
def test_fused_paths_give_way_to_bn_states_they_do_not_implement(name, case):
    """Frozen BNs while fine-tuning, test-time batch statistics (AdaBN, TENT): what eager PyTorch gives."""
    torch.manual_seed(0)
    model = _randomise_bn(create_model(name, footprint=3, padding="zeros", num_classes=5).double())
    model.train(case in _TRAINING_CASES)
    training = _set_bn(model, case)
    reference = copy.deepcopy(model)
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)
    with torch.set_grad_enabled(training):
        out = model(x)
        with use_backend("unfold"):
            expected = reference(x)
    torch.testing.assert_close(out, expected)
    if training:
        out.square().sum().backward()
        expected.square().sum().backward()
        for (key, p), q in zip(model.named_parameters(), reference.parameters()):
            # batch statistics over the last stages' 1x1 maps make gradients of 1e5: relative to their size
            torch.testing.assert_close(p.grad, q.grad, atol=1e-7 + 1e-8 * q.grad.abs().max().item(), rtol=1e-7,
                                       msg=key)
    for (key, b), c in zip(model.named_buffers(), reference.buffers()):
        torch.testing.assert_close(b, c, msg=key)  # running statistics untouched, or updated as nn.BatchNorm2d does


def test_hooks_on_any_submodule_fire_and_take_effect():
    """Fused paths do not call submodules, so a hook anywhere below sends its module the plain way."""
    torch.manual_seed(0)
    model = _randomise_bn(create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5).double())
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)
    calls = []
    hooked = (model.stem.bn, model.stages[1].blocks[0].sam.gamma, model.stages[2].blocks[0].conv, model.stages[3].norm)
    for module in hooked:
        module.register_forward_hook(lambda module, args, output: calls.append(module))
    model.train()
    model(x).sum().backward()
    assert len(calls) == len(hooked)
    model.eval()
    with torch.no_grad():
        plain = model(x)
    assert len(calls) == 2 * len(hooked)

    model.stages[2].blocks[0].sam.register_forward_hook(lambda module, args, output: output * 0)
    with torch.no_grad():
        silenced = model(x)
        with use_backend("unfold"):
            expected = model(x)
    torch.testing.assert_close(silenced, expected)
    assert not torch.allclose(silenced, plain)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_backward_hooks_fire_in_training():
    model = create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5).train()
    calls = []
    # (not on a BN: its output goes through an in-place ReLU, which PyTorch forbids after a full backward hook)
    hooked = (model.stem.conv, model.stages[1].blocks[0].sam.phi, model.stages[1].blocks[0].sam.gamma[2],
              model.stages[2].blocks[0].conv)
    for module in hooked:
        module.register_full_backward_hook(lambda module, grad_in, grad_out: calls.append(module))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert sorted(map(id, calls)) == sorted(map(id, hooked))




@pytest.mark.parametrize("where", ["pre_hook", "global_hook", "global_pre_hook"])
def test_pre_hooks_and_global_hooks_fire_as_in_eager_pytorch(where):
    """A forward pre-hook on a submodule, or a hook for every module (register_module_forward_hook),
    fires in training and in inference: the fused paths, which call no submodule, give way to them."""
    model = _randomise_bn(create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5).double())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    called = []

    def hook(module, *args):  # returns None: inputs and outputs unchanged
        called.append(module)

    if where == "pre_hook":
        expected = [model.stages[1].blocks[0].sam.gamma[0]]
        handle = expected[0].register_forward_pre_hook(hook)
    else:
        expected = list(model.modules())
        register = {"global_hook": nn.modules.module.register_module_forward_hook,
                    "global_pre_hook": nn.modules.module.register_module_forward_pre_hook}[where]
        handle = register(hook)
    try:
        for training in (True, False):
            called.clear()
            with torch.set_grad_enabled(training):
                model.train(training)(x)
            assert {id(m) for m in called} == {id(m) for m in expected}, training
    finally:
        handle.remove()


def test_a_hook_on_the_position_encoding_takes_effect_in_inference():
    """Inference with reflection padding makes p_i - p_j from the position conv's weight without
    calling it: only while nothing hooks the module (the official configuration, where a hook on
    sam.position once never fired)."""
    torch.manual_seed(0)
    model = _randomise_bn(create_model("san10_pairwise", footprint=3, num_classes=5).double()).eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        plain = model(x)
    calls = []
    model.stages[1].blocks[0].sam.position.register_forward_hook(
        lambda module, args, output: calls.append(module) or output * 100)
    with torch.no_grad():
        hooked = model(x)
        with use_backend("unfold"):
            expected = model(x)
    assert len(calls) == 2
    torch.testing.assert_close(hooked, expected)
    assert not torch.allclose(hooked, plain)


@pytest.mark.parametrize("edit", ["relu_to_identity", "strided_transition", "3x3_stem", "phi_without_bias",
                                  "grouped_gamma_conv"])
def test_a_replaced_submodule_of_a_fusable_type_is_called(edit):
    """A same-type replacement with another geometry (or an Identity for a ReLU) must change what
    the model computes as eager PyTorch would: the fused paths only stand in for the layout they
    were built with. Checked against the naive ops, which always call every submodule."""
    torch.manual_seed(0)
    model = _randomise_bn(create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5).double())
    sam = model.stages[1].blocks[0].sam
    if edit == "relu_to_identity":
        sam.gamma[4] = nn.Identity()
    elif edit == "strided_transition":
        model.stages[2].pool = nn.Identity()
        model.stages[2].transition = nn.Conv2d(256, 512, 1, stride=2, bias=False).double()
    elif edit == "3x3_stem":
        model.stem.conv = nn.Conv2d(3, 64, 3, padding=1, bias=False).double()
    elif edit == "phi_without_bias":
        sam.phi = nn.Conv2d(256, 16, 1, bias=False).double()
    else:
        sam.gamma[2] = nn.Conv2d(18, 16, 1, groups=2, bias=False).double()
    x = torch.randn(2, 3, 40, 48, dtype=torch.float64)
    for training, grad in ((True, True), (False, True), (False, False)):
        tested, reference = copy.deepcopy(model).train(training), copy.deepcopy(model).train(training)
        with use_backend("unfold"):
            expected = reference(x)
        with torch.set_grad_enabled(grad):
            torch.testing.assert_close(tested(x), expected)


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
def test_backward_inside_autocast_matches_backward_outside(name):
    torch.manual_seed(0)
    model = create_model(name, footprint=3, padding="zeros", num_classes=5)
    twin = copy.deepcopy(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        F.cross_entropy(model(x), torch.arange(2)).backward()
        loss = F.cross_entropy(twin(x), torch.arange(2))
    loss.backward()
    for (key, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=key)


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
def test_export_gives_the_eager_outputs_and_leaves_the_model_eager(name):
    # Exporting first: nothing the trace makes (fake tensors) may stay in the model's buffers or
    # caches. The program must run with autograd on, as ep.module()(x) does by default.
    torch.manual_seed(0)
    model = create_model(name, footprint=3, num_classes=5).eval()
    twin = copy.deepcopy(model)
    x = torch.randn(2, 3, 72, 72)  # 9 x 9 px in the last stage: a size no other test caches a grid for
    with torch.no_grad():
        expected = twin(x)
        exported = torch.export.export(model, (x,))
    assert all(type(t) is torch.Tensor for t in model.workspace.buffers().values())
    torch.testing.assert_close(exported.module()(x), expected)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
@pytest.mark.parametrize("mode", ["train", "eval", "no_grad"])
def test_an_empty_batch_gives_an_empty_output(name, mode):
    model = create_model(name, footprint=3, padding="zeros", num_classes=5).train(mode == "train")
    with torch.set_grad_enabled(mode != "no_grad"):
        assert model(torch.randn(0, 3, 32, 32)).shape == (0, 5)


def test_one_value_per_bn_channel_raises_before_the_running_statistics_change():
    # Batch 1 at 32 px leaves stage 4 a 1 x 1 map: nn.BatchNorm2d's error, with no NaN variance kept.
    model = create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model(torch.randn(1, 3, 32, 32))
    assert all(b.isfinite().all() for key, b in model.named_buffers() if key.endswith("running_var"))


def test_second_derivatives_raise_a_clear_error():
    model = create_model("san10_pairwise", footprint=3, padding="zeros", num_classes=5)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad.square().sum().backward()


def test_gamma_variants_have_the_documented_layers():
    sam = create_model("san10_pairwise", gamma="lrl").stages[1].blocks[0].sam
    layers = [type(m).__name__ for m in sam.gamma]
    assert layers == ["Conv2d", "ReLU", "Conv2d"]
    assert sam.gamma[0].in_channels == 16 + 2 and sam.gamma[0].out_channels == 16  # C/16 + position -> C/16
    assert sam.gamma[2].out_channels == 8  # C/32 attention channels
    official = create_model("san10_patchwise").stages[1].blocks[0].sam.gamma
    assert [type(m).__name__ for m in official] == ["BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert official[2].in_channels == 16 * 50 and official[2].out_channels == 8 and official[5].out_channels == 49 * 8
    assert official[2].bias is None and official[5].bias is not None


@pytest.mark.parametrize(
    "name,options,key",
    [
        ("san10_pairwise", {"relation": "star"}, "relation"),
        ("san10_patchwise", {"relation": "summation"}, "relation"),
        ("san10_pairwise", {"relation": "softmax"}, "relation"),
        ("san10_pairwise", {"footprint": 4}, "footprint"),
        ("san10_pairwise", {"footprint": -1}, "footprint"),
        ("san10_patchwise", {"position_encoding": "absolute"}, "position_encoding"),
        ("san10_patchwise", {"position_encoding": "relative"}, "position_encoding"),
        ("san10_pairwise", {"position_encoding": True}, "position_encoding"),  # one way to say each thing
        ("san10_pairwise", {"position_encoding": "learned"}, "position_encoding"),
        ("san10_pairwise", {"share_planes": 3}, "share_planes"),
        ("san10_pairwise", {"gamma": "mlp"}, "gamma"),
        ("san10_pairwise", {"padding": "circular"}, "padding"),
        ("san10_patchwise", {"transforms": "tied"}, "transforms"),
        ("san10_pairwise", {"transforms": True}, "transforms"),
        ("resnet26", {"num_classes": 0}, "num_classes"),
        ("san10_pairwise", {"num_classes": 0}, "num_classes"),
    ],
)
def test_invalid_options_raise_suite_error(name, options, key):
    with pytest.raises(SuiteError) as err:
        create_model(name, **options)
    assert err.value.key == key
    if key not in ("footprint", "num_classes"):  # any odd / positive integer
        assert err.value.choices  # the valid values are named


@pytest.mark.parametrize("name", ["san10_pairwise", "san19_patchwise"])
def test_the_same_checks_run_without_building_a_model(name):
    """Specs call the registry's check with the data's image size when they load, before any run."""
    with pytest.raises(SuiteError) as err:
        san.san10_pairwise(relation="star")  # a builder called directly is checked too
    assert err.value.key == "relation"
    with pytest.raises(SuiteError) as err:
        resolve_model_kwargs(name, {"footprint": 4})
    assert err.value.key == "footprint"
    with pytest.raises(SuiteError, match="inputs of 127 px leave stage 4 a 3x3 map.*at least 128 px") as err:
        resolve_model_kwargs(name, {}, input_size=127)
    assert err.value.key == "padding"
    with pytest.raises(SuiteError, match="needs inputs of at least 32 px \\(128 px with reflect padding\\)"):
        resolve_model_kwargs(name, {}, input_size=16)  # zero padding would not help either
    assert resolve_model_kwargs(name, {"padding": "zeros"}, input_size=127)["padding"] == "zeros"


@pytest.mark.parametrize("footprint,padding", [(3, "reflect"), (9, "reflect"), (7, "zeros")])
def test_the_input_size_check_agrees_with_the_model(footprint, padding):
    """The smallest input the check accepts runs, one pixel less fails in the model itself."""
    def accepts(size: int) -> bool:
        try:
            resolve_model_kwargs("san10_pairwise", {"footprint": footprint, "padding": padding}, input_size=size)
        except SuiteError as err:
            assert err.key in (None, "padding") and "at least" in err.message  # padding: when it is the cause
            return False
        return True

    need = next(size for size in range(1, 512) if accepts(size))
    assert all(accepts(size) for size in range(need, need + 70))  # the bound is one threshold
    with pytest.raises(SuiteError, match=f"at least {need} px"):
        resolve_model_kwargs("san10_pairwise", {"footprint": footprint, "padding": padding}, input_size=need - 1)
    model = create_model("san10_pairwise", footprint=footprint, padding=padding, num_classes=2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, need, need)).shape == (1, 2)
        with pytest.raises((SuiteError, RuntimeError)):
            model(torch.randn(1, 3, need - 1, need - 1))


def test_invalid_relation_names_the_valid_ones():
    with pytest.raises(SuiteError) as err:
        create_model("san10_pairwise", relation="clique")
    assert set(err.value.choices) == set(PAIRWISE_RELATIONS)


def test_position_encoding_can_be_switched_off():
    with_position = count_params("san10_pairwise")
    without = count_params("san10_pairwise", position_encoding="none")
    widths = [c for c, depth in zip((64, 256, 512, 1024, 2048), LAYERS[10]) for _ in range(depth)]
    # per block: conv_p (2*2+2), and gamma's first BN (2*2) and conv (2 * C/16) lose 2 input channels
    assert with_position - without == sum(6 + 4 + 2 * c // 16 for c in widths)


def test_absolute_position_encoding_has_the_relative_ones_parameters():
    """p_j is as wide as p_i - p_j: the ablation changes what is encoded, not the model's size."""
    assert count_params("san10_pairwise", position_encoding="absolute") == 10_531_848
    assert count_params("san10_pairwise", position_encoding="relative") == 10_531_848
    assert count_params("san10_pairwise", position_encoding="none") < 10_531_848
    assert count_params("san19_pairwise", position_encoding="absolute") == OFFICIAL_PARAMS["san19_pairwise"]


def test_position_encoding_errors_name_the_valid_values():
    for patchwise in ("san10_patchwise", "san15_patchwise", "san19_patchwise"):  # the type says it: `suite models --options` too
        assert get_model_info(patchwise).options["position_encoding"].choices == ("none",)
        with pytest.raises(SuiteError) as err:
            create_model(patchwise, position_encoding="absolute")
        assert err.value.key == "position_encoding" and tuple(err.value.choices) == ("none",)
        assert "invalid value absolute" in err.value.message
    for old in (True, False):  # booleans were the old spelling: refused by the type check, not read as a mode
        with pytest.raises(SuiteError) as err:
            resolve_model_kwargs("san10_pairwise", {"position_encoding": old})
        assert err.value.key == "position_encoding" and f"invalid value {str(old).lower()}" in err.value.message  # YAML's
        assert tuple(err.value.choices) == ("relative", "absolute", "none")
    assert resolve_model_kwargs("san10_patchwise", {"position_encoding": "none"})["position_encoding"] == "none"


def _position_term_by_loops(weight: torch.Tensor, bias: torch.Tensor, h: int, w: int, k: int, padding: str,
                            encoding: str) -> torch.Tensor:
    """The position term (1, 2, K, H*W) pixel by pixel: p = A [x, y] + b at each pixel, with x, y
    linspace(-1, 1); the neighbour j of i at offset (dy, dx) reads p at the reflected pixel
    (reflect: -r -> r, H-1+r -> H-1-r) or 0 (zeros). Absolute: p_j; relative: p_i - p_j."""
    xs, ys = torch.linspace(-1, 1, w, dtype=weight.dtype), torch.linspace(-1, 1, h, dtype=weight.dtype)

    def p(y: int, x: int) -> torch.Tensor:
        return weight @ torch.stack([xs[x], ys[y]]) + bias

    def reflect(t: int, size: int) -> int:
        return -t if t < 0 else 2 * (size - 1) - t if t >= size else t

    r = k // 2
    out = torch.zeros(1, 2, k * k, h * w, dtype=weight.dtype)
    for y in range(h):
        for x in range(w):
            for j, (dy, dx) in enumerate((dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w:
                    p_j = p(ny, nx)
                elif padding == "reflect":
                    p_j = p(reflect(ny, h), reflect(nx, w))
                else:
                    p_j = torch.zeros(2, dtype=weight.dtype)
                out[0, :, j, y * w + x] = p_j if encoding == "absolute" else p(y, x) - p_j
    return out


@pytest.mark.parametrize("encoding", ["absolute", "relative"])
@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("k,size", [(3, (5, 7)), (5, (7, 5)), (5, (9, 3))])
def test_position_term_matches_pixel_loops(encoding, padding, k, size):
    """The position channels of gamma's input, as training, plain eval (autograd on) and inference
    build them, against the definition: absolute p_j, relative p_i - p_j, padded as the features."""
    h, w = size
    torch.manual_seed(0)
    sam = san.SelfAttention(64, mode="pairwise", relation="subtraction", kernel_size=k, position_encoding=encoding,
                            gamma="official", share_planes=8, padding=padding).double()
    nn.init.normal_(sam.position.weight)
    nn.init.normal_(sam.position.bias)  # non-zero: p_j = A g_j + b, not A g_j
    expected = _position_term_by_loops(sam.position.weight.flatten(1), sam.position.bias, h, w, k, padding, encoding)
    like = torch.empty(2, 4, h, w, dtype=torch.float64)
    got = sam._position_term(like, streamed=False)
    torch.testing.assert_close(got, expected)
    g = torch.randn_like(got)  # and conv_p's gradients (the grid's sums are 0: a plain sum would hide them)
    params = list(sam.position.parameters())
    for ours, theirs in zip(torch.autograd.grad(got, params, g), torch.autograd.grad(expected, params, g)):
        torch.testing.assert_close(ours, theirs)
        assert encoding == "relative" or ours.abs().sum() > 0  # relative: the bias cancels
    with torch.no_grad():  # inference, streamed (relative with reflection: the cached coordinate differences) or not
        for streamed in (True, False):
            torch.testing.assert_close(sam._position_term(like, streamed=streamed), expected)
        with use_backend("unfold"):
            torch.testing.assert_close(sam._position_term(like, streamed=False), expected)


@pytest.mark.slow  # a 224 px trace of each SAN, SAN19's about 3 s
@pytest.mark.parametrize("name,gmacs", [
    ("san10_pairwise", 2.111), ("san10_patchwise", 1.830), ("san15_pairwise", 2.959),
    ("san15_patchwise", 2.534), ("san19_pairwise", 3.765), ("san19_patchwise", 3.199),
])
def test_flops_match_the_official_counter(name, gmacs):
    """fvcore with the SA handles, nothing unaccounted: the official model's fvcore count plus its
    SA ops (2.11 / 1.83 / 2.96 / 2.53 / 3.76 / 3.20 G); the official counter, behind the paper's
    2.2 / 1.9 / 3.0 / 2.6 / 3.8 / 3.3, also charges ReLU and pooling, about 2 % more."""
    from suite.measure.complexity import model_complexity

    result = model_complexity(name)
    assert result.gmacs == pytest.approx(gmacs, abs=0.0005)
    assert not result.unsupported_ops
    assert 0.95 < result.gmacs / get_model_info(name).paper["gmacs"] < 1.0


def test_position_encodings_are_counted_without_unsupported_ops():
    """p_j is a conv and an im2col (data movement, 0); p_i - p_j adds its subtraction, 1 per element
    of (2, K, H*W) in every block; both are copied into gamma's input at no cost."""
    from suite.measure.complexity import model_complexity

    size = 64
    counts = {}
    for encoding in ("relative", "absolute", "none"):
        result = model_complexity("san10_pairwise", size, position_encoding=encoding, padding="zeros")
        assert not result.unsupported_ops, encoding
        counts[encoding] = round(result.gmacs * 1e9)
    subtractions = sum(depth * 2 * k * k * (size >> (i + 1)) ** 2
                       for i, (depth, k) in enumerate(zip(LAYERS[10], (3, 7, 7, 7, 7))))
    assert counts["relative"] - counts["absolute"] == subtractions
    assert counts["absolute"] > counts["none"]  # the position conv and gamma's two extra input channels


def _blocks(depth: int) -> list[tuple[int, int, int]]:
    """(C, k, map side at 64 px) of every block of SAN<depth>: stage i sees 64 >> (i + 1)."""
    return [(c, k, 64 >> (i + 1)) for i, (c, n, k) in enumerate(zip((64, 256, 512, 1024, 2048), LAYERS[depth],
                                                                   (3, 7, 7, 7, 7))) for _ in range(n)]


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise", "san19_pairwise"])
def test_shared_transforms_remove_their_convs(name):
    """'shared_relation' loses psi (C -> C/16 with bias) per block. 'shared' loses phi and psi, and
    delta runs on beta's C/4 channels: gamma's input widens by 3C/16 per delta channel group
    (pairwise subtraction: 1 group, the position channels stay 2; patchwise concatenation: K + 1),
    which costs its first BN 2 and its first conv (no bias) the official hidden width per channel:
    C/16 pairwise, C/32 (= C/4 / share_planes 8) patchwise."""
    depth = int(name[3:5])
    patchwise = name.endswith("patchwise")
    official = OFFICIAL_PARAMS[name]
    assert count_params(name, transforms="separate") == official
    conv = sum(c * (c // 16) + c // 16 for c, _, _ in _blocks(depth))
    assert count_params(name, transforms="shared_relation") == official - conv
    groups = [(k * k + 1) if patchwise else 1 for _, k, _ in _blocks(depth)]
    hidden = [c // 32 if patchwise else c // 16 for c, _, _ in _blocks(depth)]
    wider = sum(g * 3 * c // 16 * (2 + h) for (c, _, _), g, h in zip(_blocks(depth), groups, hidden))
    assert count_params(name, transforms="shared") == official - 2 * conv + wider

    for transforms, gone in (("shared_relation", ("psi",)), ("shared", ("phi", "psi"))):
        model = create_model(name, transforms=transforms)
        keys = model.state_dict().keys()
        assert not [k for k in keys if any(f".sam.{role}." in k for role in gone)]  # no second copy anywhere
        assert sum(p.numel() for p in model.parameters()) == sum(model.state_dict()[k].numel() for k in keys
                                                                 if not k.endswith(("running_mean", "running_var",
                                                                                    "num_batches_tracked")))


def _sam(channels: int, mode: str, relation: str, transforms: str) -> san.SelfAttention:
    return san.SelfAttention(channels, mode=mode, relation=relation, kernel_size=3,
                             position_encoding="relative" if mode == "pairwise" else "none", gamma="official",
                             share_planes=8, padding="zeros", transforms=transforms).double()


@pytest.mark.parametrize("transforms", ["shared_relation", "shared"])
@pytest.mark.parametrize("mode,relation", [("pairwise", "subtraction"), ("pairwise", "hadamard"),
                                           ("patchwise", "concatenation")])
def test_shared_transforms_are_separate_ones_with_tied_weights(transforms, mode, relation):
    """A shared SAM computes what the official separate one computes with psi's conv (and, shared,
    phi's: widened to C -> C/4) a copy of the shared conv, in inference, training and plain eval; the
    shared conv's gradient is the sum of the roles' gradients in the separate reference."""
    torch.manual_seed(0)
    c = 64
    sam = _randomise_bn(_sam(c, mode, relation, transforms))
    reference = _sam(c, mode, relation, "separate")
    if transforms == "shared":  # delta at beta's width: phi and psi C -> C/4, gamma's first layer 4x wider
        reference.phi, reference.psi = nn.Conv2d(c, c // 4, 1).double(), nn.Conv2d(c, c // 4, 1).double()
    reference.gamma = copy.deepcopy(sam.gamma)
    reference.position = copy.deepcopy(sam.position)
    reference.beta.load_state_dict(sam.beta.state_dict())
    tied = sam.beta if transforms == "shared" else sam.phi
    reference.phi.load_state_dict(tied.state_dict())
    reference.psi.load_state_dict(tied.state_dict())
    assert (sam.psi is None) and (sam.phi is None) == (transforms == "shared")
    x = torch.randn(2, c, 9, 7, dtype=torch.float64)

    sam.eval(), reference.eval()
    with torch.no_grad():
        out = sam(x)  # inference: one fused input conv, streamed gamma
        with use_backend("unfold"):
            expected = reference(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(sam(x), expected)  # plain modules, autograd on

    sam.train(), reference.train()
    xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = sam(xs[0])  # training: gamma as one memory-light op
    with use_backend("unfold"):
        expected = reference(xs[1])
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(out)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(xs[0].grad, xs[1].grad)
    roles = [reference.phi, reference.psi] + ([reference.beta] if transforms == "shared" else [])
    for param in ("weight", "bias"):
        summed = sum(getattr(m, param).grad for m in roles)
        torch.testing.assert_close(getattr(tied, param).grad, summed)
        assert getattr(reference.psi, param).grad.abs().sum() > 0  # the neighbour role does reach it
    for ours, theirs in zip(sam.gamma.parameters(), reference.gamma.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad)
    if transforms == "shared_relation":
        torch.testing.assert_close(sam.beta.weight.grad, reference.beta.weight.grad)


@pytest.mark.parametrize("name", ["san10_pairwise", "san10_patchwise"])
def test_shared_transforms_are_counted_without_unsupported_ops(name):
    """Every removed conv is C * C/16 multiply-adds per pixel. 'shared' widens delta and gamma's
    input by 3C/16 per channel group (pairwise: K groups per pixel, the subtraction 1 and gamma's
    first BN 2 per element, its conv C/16; patchwise concatenation: K + 1 groups, a copy (0), BN 2,
    conv C/32)."""
    from suite.measure.complexity import model_complexity

    counts = {}
    for transforms in ("separate", "shared_relation", "shared"):
        result = model_complexity(name, 64, transforms=transforms, padding="zeros")
        assert not result.unsupported_ops, transforms
        counts[transforms] = round(result.gmacs * 1e9)
    conv = sum(c * (c // 16) * side**2 for c, _, side in _blocks(10))
    assert counts["separate"] - counts["shared_relation"] == conv
    if name == "san10_pairwise":
        wider = sum(3 * c // 16 * k * k * side**2 * (1 + 2 + c // 16) for c, k, side in _blocks(10))
    else:
        wider = sum(3 * c // 16 * (k * k + 1) * side**2 * (2 + c // 32) for c, k, side in _blocks(10))
    assert counts["shared"] - counts["separate"] == wider - 2 * conv


# ---------------------------------------------------------------------------- official checkpoints
def official_layout(sa_type: int, layers: tuple[int, ...], kernels: tuple[int, ...], classes: int) -> dict:
    """Key -> shape of hszhao/SAN model/san.py's state_dict, following its SAN/Bottleneck/SAM code."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name, cin, cout, bias):
        shapes[f"{name}.weight"] = (cout, cin, 1, 1)
        if bias:
            shapes[f"{name}.bias"] = (cout,)

    def bn(name, c):
        for tensor in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{tensor}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    conv("conv_in", 3, 64, False)
    bn("bn_in", 64)
    cin = 64
    for i, (c, depth, k) in enumerate(zip((64, 256, 512, 1024, 2048), layers, kernels)):
        conv(f"conv{i}", cin, c, False)
        bn(f"bn{i}", c)
        rel, mid = c // 16, c // 4
        for b in range(depth):
            p = f"layer{i}.{b}"
            bn(f"{p}.bn1", c)
            for j, out in ((1, rel), (2, rel), (3, mid)):
                conv(f"{p}.sam.conv{j}", c, out, True)
            if sa_type == 0:
                bn(f"{p}.sam.conv_w.0", rel + 2)
                conv(f"{p}.sam.conv_w.2", rel + 2, rel, False)
                bn(f"{p}.sam.conv_w.3", rel)
                conv(f"{p}.sam.conv_w.5", rel, mid // 8, True)
                conv(f"{p}.sam.conv_p", 2, 2, True)
            else:
                bn(f"{p}.sam.conv_w.0", rel * (k * k + 1))
                conv(f"{p}.sam.conv_w.2", rel * (k * k + 1), mid // 8, False)
                bn(f"{p}.sam.conv_w.3", mid // 8)
                conv(f"{p}.sam.conv_w.5", mid // 8, k * k * mid // 8, True)
            bn(f"{p}.bn2", mid)
            conv(f"{p}.conv", mid, c, True)
        cin = c
    shapes["fc.weight"], shapes["fc.bias"] = (classes, 2048), (classes,)
    return shapes


def random_state_dict(shapes: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(".weight") and len(shape) == 4:
            out[key] = torch.randn(shape, generator=g) / shape[1] ** 0.5
        else:
            out[key] = torch.randn(shape, generator=g) * 0.2 + (1.0 if key.endswith("weight") else 0.0)
    return out


def official_forward(sd: dict, x: torch.Tensor, sa_type: int, layers, kernels) -> torch.Tensor:
    """The official SAN forward transcribed with the official keys, the SA ops as F.unfold."""

    def conv(t, name):
        return F.conv2d(t, sd[f"{name}.weight"], sd.get(f"{name}.bias"))

    def bn(t, name):
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], False, 0.0, 1e-5)

    def gamma(t, p):
        return conv(F.relu(bn(conv(F.relu(bn(t, f"{p}.0")), f"{p}.2"), f"{p}.3")), f"{p}.5")

    def sam(t, p, k):
        n, _, h, w = t.shape
        kk, pad = k * k, (k - 1) // 2

        def unfold_j(u):
            return F.unfold(F.pad(u, (pad,) * 4, mode="reflect"), k)

        x1, x2, x3 = conv(t, f"{p}.conv1"), conv(t, f"{p}.conv2"), conv(t, f"{p}.conv3")
        if sa_type == 0:
            loc = torch.stack([torch.linspace(-1, 1, w).repeat(h, 1), torch.linspace(-1, 1, h).unsqueeze(1).repeat(1, w)])
            pos = conv(loc.unsqueeze(0), f"{p}.conv_p")
            sub2 = x1.view(n, -1, 1, h * w) - unfold_j(x2).view(n, -1, kk, h * w)
            sub = pos.view(1, 2, 1, h * w) - unfold_j(pos).view(1, 2, kk, h * w)
            weights = gamma(torch.cat([sub2, sub.repeat(n, 1, 1, 1)], 1), f"{p}.conv_w").softmax(-2)
        else:
            z = torch.cat([x1.view(n, -1, 1, h * w), unfold_j(x2).view(n, -1, 1, h * w)], 1)
            weights = gamma(z, f"{p}.conv_w").view(n, -1, kk, h * w)
        cw = weights.shape[1]
        values = unfold_j(x3).view(n, x3.shape[1] // cw, cw, kk, h * w)
        return (weights.unsqueeze(1) * values).sum(-2).view(n, -1, h, w)

    x = F.relu(bn(conv(x, "conv_in"), "bn_in"))
    for i, (depth, k) in enumerate(zip(layers, kernels)):
        x = conv(F.max_pool2d(x, 2, 2), f"conv{i}")
        for b in range(depth):
            p = f"layer{i}.{b}"
            out = F.relu(bn(sam(F.relu(bn(x, f"{p}.bn1")), f"{p}.sam", k), f"{p}.bn2"))
            x = conv(out, f"{p}.conv") + x
        x = F.relu(bn(x, f"bn{i}"))
    return F.linear(F.adaptive_avg_pool2d(x, 1).flatten(1), sd["fc.weight"], sd["fc.bias"])


@pytest.mark.parametrize("sa_type,depth,footprint,size", [
    (0, 10, 3, 64), (1, 10, 3, 64),
    # the deeper layouts with the official 7x7 footprint (reflection needs 128 px at 7x7)
    (0, 15, 7, 128), (1, 19, 7, 128),
])
def test_official_checkpoint_reproduces_the_official_forward(sa_type, depth, footprint, size):
    layers, kernels = LAYERS[depth], (3,) + (footprint,) * 4
    official = random_state_dict(official_layout(sa_type, layers, kernels, 10))
    for key in official:  # damped residual branches: 12-19 random blocks would overflow float32
        if key.endswith((".conv.weight", ".conv_w.5.weight")):
            official[key] = official[key] * 0.1
    model = create_model(f"san{depth}_{('pairwise', 'patchwise')[sa_type]}", footprint=footprint, num_classes=10)
    # DistributedDataParallel prefix, as in the released checkpoints
    load_official_san(model, {f"module.{k}": v for k, v in official.items()}).eval()
    x = torch.randn(2 if size < 128 else 1, 3, size, size)  # the batch's position term once; then cheap
    with torch.no_grad():
        expected = official_forward(official, x, sa_type, layers, kernels)
        out = model(x)
    assert torch.isfinite(expected).all() and expected.abs().max() > 1
    torch.testing.assert_close(out, expected, atol=1e-4 * expected.abs().max().item(), rtol=1e-4)
    assert model.stages[1].blocks[0].sam.phi.weight.equal(official["layer1.0.sam.conv1.weight"])


@pytest.mark.parametrize("sa_type", [0, 1])
@pytest.mark.parametrize("depth", [10, 15, 19])
def test_official_key_names_map_both_ways(sa_type, depth):
    """Every official key has one of ours and back, so an error can name a tensor in either tree."""
    kernels = (3, 7, 7, 7, 7)
    official = official_layout(sa_type, LAYERS[depth], kernels, 1000)
    ours = create_model(f"san{depth}_{('pairwise', 'patchwise')[sa_type]}").state_dict()
    assert sorted(official_to_suite_key(k) for k in official) == sorted(ours)
    assert all(official_to_suite_key(suite_to_official_key(k)) == k for k in ours)
    assert official_to_suite_key("layer0.0.sam.unknown.weight") == "stages.0.blocks.0.sam.unknown.weight"
    assert official_to_suite_key("head.weight") is None and suite_to_official_key("head.weight") is None


def test_official_checkpoint_errors_name_the_key():
    official = random_state_dict(official_layout(0, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    model = create_model("san10_pairwise")
    load_official_san(model, official)  # the real layout loads
    with pytest.raises(SuiteError) as err:  # the other family: said as such, not as a shape
        load_official_san(create_model("san10_patchwise"), official)
    assert err.value.key.startswith("layer0.0.sam.conv_p.") and "a pairwise SAN checkpoint" in err.value.message
    patchwise = random_state_dict(official_layout(1, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    load_official_san(create_model("san10_patchwise"), patchwise)
    for pairwise in (model, create_model("san10_pairwise", position_encoding="none")):  # told by gamma's input width
        with pytest.raises(SuiteError) as err:
            load_official_san(pairwise, patchwise)
        assert err.value.key == "layer0.0.sam.conv_w.0.weight" and "a patchwise SAN checkpoint" in err.value.message
        assert "san*_patchwise" in err.value.message
    unencoded = {k: v[:-2] if ".sam.conv_w.0." in k and v.ndim else v[:, :-2] if ".sam.conv_w.2." in k else v
                 for k, v in official.items() if ".sam.conv_p." not in k}  # as trained without position encoding
    load_official_san(create_model("san10_pairwise", position_encoding="none"), unencoded)
    for encoded in (model, create_model("san10_pairwise", position_encoding="absolute")):
        with pytest.raises(SuiteError) as err:
            load_official_san(encoded, unencoded)
        assert err.value.key == "position_encoding" and "position_encoding='none'" in err.value.message
    for transforms in ("shared_relation", "shared"):  # official weights are separate ones
        shared = create_model("san10_pairwise", transforms=transforms)
        with pytest.raises(SuiteError) as err:
            load_official_san(shared, official)
        assert err.value.key == "transforms" and err.value.choices == ["separate"]
        assert "transforms='separate'" in err.value.message
        assert not shared.stages[1].blocks[0].sam.beta.weight.equal(official["layer1.0.sam.conv3.weight"])
    absolute = create_model("san10_pairwise", position_encoding="absolute")  # conv_p's shapes, another meaning
    with pytest.raises(SuiteError) as err:
        load_official_san(absolute, official)
    assert err.value.key == "position_encoding" and err.value.choices == ["relative"]
    assert "encodes relative positions" in err.value.message and "position_encoding='relative'" in err.value.message
    assert not absolute.stages[1].blocks[0].sam.phi.weight.equal(official["layer1.0.sam.conv1.weight"])  # nothing loaded
    with pytest.raises(SuiteError) as err:
        load_official_san(create_model("ran56_cifar"), official)
    assert err.value.key == "model" and "not a ResidualAttentionNet" in err.value.message
    with pytest.raises(SuiteError) as err:
        load_official_san(create_model("san10_pairwise", num_classes=10), official)
    assert err.value.key == "fc.weight"
    with pytest.raises(SuiteError) as err:
        load_official_san(model, {**official, "layer5.0.conv.weight": torch.zeros(1)})
    assert err.value.key == "layer5.0.conv.weight"
    incomplete = {k: v for k, v in official.items() if k != "layer2.1.sam.conv_p.bias"}
    with pytest.raises(SuiteError) as err:
        load_official_san(model, incomplete)
    assert err.value.key == "layer2.1.sam.conv_p.bias"  # the checkpoint's name, and ours beside it
    assert "'stages.2.blocks.1.sam.position.bias'" in err.value.message
    with pytest.raises(SuiteError) as err:  # a model built without position encoding has no conv_p
        load_official_san(create_model("san10_pairwise", position_encoding="none"), official)
    assert err.value.key == "position_encoding" and "position_encoding='relative'" in err.value.message
    with pytest.raises(SuiteError) as err:
        load_official_san(create_model("san10_pairwise", relation="hadamard"), official)
    assert err.value.key == "relation"
    with pytest.raises(SuiteError) as err:
        load_official_san(model, {**official, "fc.bias": official["fc.bias"].tolist()})
    assert err.value.key == "fc.bias" and "expected a tensor, got list" in err.value.message
    for other, says in [(create_model("ran56_cifar").state_dict(), "not an official SAN checkpoint"),
                        (create_model("resnet26").state_dict(), "not an official SAN checkpoint"),  # layerN.M. too
                        (model.state_dict(), "the suite's own key names"),
                        (create_model("san19_patchwise").state_dict(), "the suite's own key names"),
                        ({}, "an empty state_dict"), ({0: torch.zeros(1)}, "not an official SAN checkpoint"),
                        (None, "expected a state_dict"), ([1, 2], "expected a state_dict")]:
        with pytest.raises(SuiteError) as err:  # not blamed on a family or a key that happens to come first
            load_official_san(model, other)
        assert err.value.key == "state_dict" and says in err.value.message


@pytest.mark.parametrize("given, says", [
    ({}, r"an empty state_dict: nothing to load"),  # was "none of its 0 keys ...; first key None"
    ({"epoch": 100, "state_dict": {}}, r"the checkpoint's 'state_dict' is empty: nothing to load"),
    ({"epoch": 100, "optimizer": {}}, r"none of its 2 values is a tensor \(keys 'epoch', 'optimizer'\): the official "
                                      r"tool/train.py saves the weights under 'state_dict'"),
    ("model_best.pth", r"got a path \('model_best.pth'\): read the file first, "
                       r"torch.load\(path, map_location='cpu'\)"),
    (torch.nn.Linear(1, 1), r"got a model \(Linear\): pass its state_dict\(\)"),
    ({"module.conv1.weight": torch.zeros(1)},
     r"not an official SAN checkpoint: none of its 1 key is a self-attention weight .*; first key 'module.conv1"),
])
def test_degenerate_checkpoints_are_said_as_what_they_are(given, says):
    """An empty state_dict, an empty or missing 'state_dict' entry of a training checkpoint, a path or
    a model where the loaded file's dict belongs: each said as such, under the argument's name."""
    with pytest.raises(SuiteError, match=rf"^state_dict: {says}") as err:
        load_official_san(create_model("san10_pairwise"), given)
    assert err.value.key == "state_dict"


def test_official_training_checkpoints_and_wrapped_models_load():
    """What the official tool/train.py saves ({'epoch', 'state_dict', ...}), into a DataParallel model."""
    official = random_state_dict(official_layout(0, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    wrapped = torch.nn.DataParallel(create_model("san10_pairwise"))
    checkpoint = {"epoch": 100, "state_dict": {f"module.{k}": v for k, v in official.items()}, "optimizer": {}}
    assert load_official_san(wrapped, checkpoint) is wrapped
    assert wrapped.module.stages[1].blocks[0].sam.phi.weight.equal(official["layer1.0.sam.conv1.weight"])


def test_errors_about_a_wrapped_models_checkpoint_name_its_keys_as_the_file_has_them():
    """A (Distributed)DataParallel checkpoint's keys all start with `module.`: a shape, type,
    unexpected or missing key, or the key that shows the family, was named without it (fc.bias),
    a key the user's file does not have. Each is named as the file spells it (module.fc.bias)."""
    official = random_state_dict(official_layout(0, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    model = create_model("san10_pairwise")

    def refusal(model: nn.Module, state_dict: dict[str, object]) -> SuiteError:
        with pytest.raises(SuiteError) as err:
            load_official_san(model, {f"module.{k}": v for k, v in state_dict.items()})
        return err.value

    assert refusal(create_model("san10_pairwise", num_classes=10), official).key == "module.fc.weight"
    assert refusal(model, {**official, "fc.bias": official["fc.bias"].tolist()}).key == "module.fc.bias"
    assert refusal(model, {**official, "layer5.0.conv.weight": torch.zeros(1)}).key == "module.layer5.0.conv.weight"
    lacking = refusal(model, {k: v for k, v in official.items() if k != "layer2.1.sam.conv_p.bias"})
    assert lacking.key == "module.layer2.1.sam.conv_p.bias" and "first 'module.layer2.1.sam.conv_p.bias'" in str(lacking)
    assert refusal(create_model("san10_patchwise"), official).key.startswith("module.layer0.0.sam.conv_p.")


@pytest.mark.parametrize("blocks", ["bands", "images"])
@pytest.mark.parametrize("input_grad", [False, True])
def test_stem_training_matches_the_modules(monkeypatch, input_grad, blocks):
    """The stem's training op (BN statistics from the input's channel covariance, forward and
    backward a block at a time, backward from the gradient's sums; a second pass for an input
    gradient) equals the modules, running statistics included. Blocks as on the CPU (bands of rows
    of one image) and as on other devices (several whole images)."""
    import suite.models.san

    monkeypatch.setattr(suite.models.san, "_STEM_CHUNK_ELEMENTS", 1)  # one image at a time
    if blocks == "bands":
        monkeypatch.setattr(suite.models.san, "_STEM_BAND_ELEMENTS", 1)  # bands of two rows
    else:  # as other devices' blocks: here two whole images at a time
        monkeypatch.setattr(suite.models.san, "_stem_block_shape", lambda x: (2, x.shape[2] // 2 * 2))
    torch.manual_seed(0)
    stem = suite.models.san.Stem().double().train()
    with torch.no_grad():  # BN's affine away from (1, 0), so each term of its backward counts
        stem.bn.weight.uniform_(0.5, 1.5)
        stem.bn.bias.uniform_(-0.5, 0.5)
    reference = copy.deepcopy(stem)
    # odd height (pooling floors, the statistics do not); channel means far from 0 (the moments are
    # centred); equal neighbours in every window: the pool's backward routes a tie to the first
    # of them in the window's row-major order
    x = (3 * torch.randn(3, 3, 11, 7, dtype=torch.float64) + 5).repeat_interleave(2, -1).requires_grad_(input_grad)
    out = stem(x)
    with use_backend("unfold"):
        expected = reference(x)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
    for name, buffer in reference.bn.named_buffers():
        torch.testing.assert_close(getattr(stem.bn, name), buffer, atol=1e-12, rtol=1e-10, msg=name)
    g = torch.randn_like(out)
    inputs = [x] if input_grad else []
    grads = torch.autograd.grad(out, [*inputs, *stem.parameters()], g)
    expected_grads = torch.autograd.grad(expected, [*inputs, *reference.parameters()], g)
    assert len(grads) == (4 if input_grad else 3)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


@pytest.mark.slow
def test_torch_compile_of_a_patchwise_block_after_a_pairwise_one():
    """Recompiling Block.forward for another family makes dynamo trace shapes symbolically; the
    aggregation's check for eager inference's channels-last weights then failed the trace. Nothing
    the ops do makes dynamo warn (it did about tracing through the footprint's offsets cache)."""
    torch.manual_seed(0)
    x = torch.randn(2, 256, 16, 16, dtype=torch.float64)
    for name, footprint in (("san10_pairwise", 5), ("san10_patchwise", 3)):
        block = create_model(name, padding="zeros", footprint=footprint).stages[1].blocks[0].double()
        compiled = torch.compile(copy.deepcopy(block))
        xs = x.clone().requires_grad_(), x.clone().requires_grad_()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = compiled(xs[0])
        assert not caught, [str(w.message) for w in caught]
        expected = block(xs[1])
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
        assert torch.allclose(out, expected) and torch.allclose(xs[0].grad, xs[1].grad)
        compiled.eval()
        with torch.no_grad():
            compiled(x)


@pytest.mark.parametrize("name", SAN_MODELS)
def test_every_san_model_defaults_to_the_official_configuration(name):
    """The official configs: footprint 7 (stage 0 keeps 3), share_planes 8, reflection padding,
    separate transformations, the official gamma; pairwise subtraction with relative positions,
    patchwise concatenation. Parameter counts cannot tell a pairwise footprint, the padding or an
    absolute encoding from the official one, so the defaults are pinned here."""
    pairwise = name.endswith("_pairwise")
    assert get_model_info(name).defaults == {
        "relation": "subtraction" if pairwise else "concatenation", "footprint": 7,
        "position_encoding": "relative" if pairwise else "none", "gamma": "official", "share_planes": 8,
        "padding": "reflect", "transforms": "separate", "num_classes": 1000,
    }


def test_the_edge_values_of_footprint_and_share_planes_are_accepted():
    """1x1 is an odd footprint (attention on the pixel itself); share_planes may be any divisor of
    the narrowest stage's value width, 16, and only those are offered."""
    for options in ({"footprint": 1}, {"share_planes": 1}, {"share_planes": 16}):
        resolve_model_kwargs("san10_pairwise", options)
    for share in (0, -2, 3, 32):
        with pytest.raises(SuiteError) as err:
            resolve_model_kwargs("san10_pairwise", {"share_planes": share})
        assert err.value.key == "share_planes" and err.value.choices == ["1", "2", "4", "8", "16"]


def test_a_pairwise_checkpoint_without_its_position_weights_is_not_called_patchwise():
    """gamma's input (C/16 + 2 channels) still tells the family when every sam.conv_p tensor is gone."""
    official = random_state_dict(official_layout(0, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    stripped = {k: v for k, v in official.items() if ".sam.conv_p." not in k}
    with pytest.raises(SuiteError) as err:
        load_official_san(create_model("san10_pairwise", position_encoding="none"), stripped)
    assert err.value.key == "layer0.0.sam.conv_w.0.weight" and "patchwise" not in err.value.message
    assert "position_encoding" in err.value.message


def test_official_checkpoints_without_batch_counters_load_and_other_gammas_are_refused_by_name():
    """Checkpoints of PyTorch before 0.4.1 have no num_batches_tracked (it only counts BN updates);
    a model with another gamma is refused by the option, not by the first key that fails to fit."""
    official = random_state_dict(official_layout(0, LAYERS[10], (3, 7, 7, 7, 7), 1000))
    older = {k: v for k, v in official.items() if not k.endswith("num_batches_tracked")}
    model = load_official_san(create_model("san10_pairwise"), older)
    assert model.stages[1].blocks[0].sam.phi.weight.equal(official["layer1.0.sam.conv1.weight"])
    for gamma in ("linear", "lrl"):
        with pytest.raises(SuiteError) as err:
            load_official_san(create_model("san10_pairwise", gamma=gamma), official)
        assert err.value.key == "gamma" and err.value.choices == ["official"]
