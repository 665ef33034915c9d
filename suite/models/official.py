"""Loading checkpoints of the official SAN code (hszhao/SAN `model/san.py`) into our SAN models.

The official module tree names things by position (`layer{i}`, `conv{i}`, `sam.conv1`...); ours
names them by role (`stages.{i}`, paper symbols phi/psi/beta/gamma). Correspondence, derived from
the official `SAN.__init__`/`forward`, `Bottleneck` and `SAM`:

    conv_in, bn_in                  -> stem.conv, stem.bn    (1x1 conv 3 -> 64, BN)
    conv{i}, bn{i}                  -> stages.{i}.transition, stages.{i}.norm
    layer{i}.{b}.{bn1,bn2,conv}     -> stages.{i}.blocks.{b}.{bn1,bn2,conv}
    layer{i}.{b}.sam.conv1          -> ....sam.phi           (centre, x_i)
    layer{i}.{b}.sam.conv2          -> ....sam.psi           (neighbour, x_j)
    layer{i}.{b}.sam.conv3          -> ....sam.beta          (values)
    layer{i}.{b}.sam.conv_w.{n}     -> ....sam.gamma.{n}     (same Sequential indices)
    layer{i}.{b}.sam.conv_p         -> ....sam.position      (pairwise only)
    fc                              -> fc

Released checkpoints hold a DistributedDataParallel state_dict, so a leading `module.` is dropped
(hszhao/SAN#15) to match the keys; errors name a key with it, as the user's file has it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import nn

from suite.errors import SuiteError, count

# (official prefix, ours): {i} is a stage's digit, {b} a block's index; a block's attention convs
# are renamed by _IN_BLOCK. One table serves both directions.
_TREE = [("conv_in.", "stem.conv."), ("bn_in.", "stem.bn."), ("conv{i}.", "stages.{i}.transition."),
         ("bn{i}.", "stages.{i}.norm."), ("layer{i}.{b}.", "stages.{i}.blocks.{b}."), ("fc.", "fc.")]
_IN_BLOCK = [("sam.conv1.", "sam.phi."), ("sam.conv2.", "sam.psi."), ("sam.conv3.", "sam.beta."),
             ("sam.conv_w.", "sam.gamma."), ("sam.conv_p.", "sam.position.")]
_OFFICIAL_RELATION = {"pairwise": "subtraction", "patchwise": "concatenation"}


def _weights(checkpoint: object) -> Mapping[object, object]:
    """The state_dict in `checkpoint` (a training checkpoint keeps it under 'state_dict'); what is
    none (a path not yet read, a model, a checkpoint without weights or an empty one) is said as such."""
    nested = isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping)
    state_dict = checkpoint["state_dict"] if nested else checkpoint  # type: ignore[index]
    if isinstance(state_dict, (str, os.PathLike)):
        raise SuiteError(f"got a path ({str(state_dict)!r}): read the file first, torch.load(path, map_location='cpu')",
                         key="state_dict")
    if isinstance(state_dict, nn.Module):
        raise SuiteError(f"got a model ({type(state_dict).__name__}): pass its state_dict()", key="state_dict")
    if not isinstance(state_dict, Mapping):
        raise SuiteError(f"expected a state_dict (official key names to tensors), got {type(state_dict).__name__}",
                         key="state_dict")
    if not state_dict:
        what = "the checkpoint's 'state_dict' is empty" if nested else "an empty state_dict"
        raise SuiteError(f"{what}: nothing to load", key="state_dict")
    if not any(isinstance(v, torch.Tensor) for v in state_dict.values()):
        keys = ", ".join(repr(str(k)) for k in list(state_dict)[:5]) + (", ..." if len(state_dict) > 5 else "")
        raise SuiteError(f"none of its {count(len(state_dict), 'value')} is a tensor (keys {keys}): the official "
                         "tool/train.py saves the weights under 'state_dict'", key="state_dict")
    return state_dict


def _check_family(sam: nn.Module, state_dict: Mapping[str, object]) -> None:
    """A checkpoint of the other family, or with position encoding where the model has none (or the
    reverse), would otherwise fail on the first shape or key that differs, with no word of why; one
    with (relative) position encoding into a model with absolute encoding would load silently. The
    family shows in a block's widths: gamma's input is phi's width (+2 with position encoding)
    pairwise, and phi's width times (footprint^2 + 1) patchwise."""
    position = next((k for k in state_dict if ".sam.conv_p." in k), None)
    family, evidence = ("pairwise", position) if position is not None else _family_from_widths(state_dict)
    if family is not None and family != sam.mode:
        raise SuiteError(f"a {family} SAN checkpoint (as {evidence!r} shows) does not load into a {sam.mode} "
                         f"model: build the san*_{family} model of its depth", key=evidence,
                         choices=[f"san*_{family}"])
    if sam.mode == "pairwise" and (sam.position is None) != (position is None):
        has, value = ("has", "relative") if position is not None else ("has no", "none")
        raise SuiteError(f"the checkpoint {has} position-encoding weights (sam.conv_p): build the model with "
                         f"position_encoding={value!r}", key="position_encoding", choices=[value])
    if sam.mode == "pairwise" and position is not None and sam.position_encoding == "absolute":
        # the same shapes as relative encoding's weights: no shape check would notice
        raise SuiteError("the official code encodes relative positions (p_i - p_j), this model absolute ones (p_j): "
                         "build it with position_encoding='relative' to load official weights",
                         key="position_encoding", choices=["relative"])


def _family_from_widths(state_dict: Mapping[str, object]) -> tuple[str | None, str | None]:
    """pairwise or patchwise by the first block's phi and gamma widths, and the key that shows it."""
    for key, gamma_in in state_dict.items():
        if not str(key).endswith(".sam.conv_w.0.weight"):
            continue
        phi = state_dict.get(str(key).replace(".sam.conv_w.0.weight", ".sam.conv1.weight"))
        if isinstance(phi, torch.Tensor) and isinstance(gamma_in, torch.Tensor) and phi.ndim and gamma_in.ndim:
            return "pairwise" if gamma_in.shape[0] in (phi.shape[0], phi.shape[0] + 2) else "patchwise", str(key)
    return None, None


def _check_official(state_dict: Mapping[object, object], prefix: str) -> None:
    """An official SAN checkpoint has self-attention weights (`layer<N>.<M>.sam.*`): a ResNet's or
    another model's state_dict, or one in our own naming, would otherwise be diagnosed by the first
    key that does not fit (torchvision's ResNet keys map through the same `layer`/`bn` patterns)."""
    keys = [str(k) for k in state_dict]
    bare = [k[len(prefix):] for k in keys]
    if any(".sam." in k and official_to_suite_key(k) is not None for k in bare):
        return
    if any(k.startswith("stages.") for k in bare):
        raise SuiteError("this state_dict has the suite's own key names (stages.*), not the official code's: load "
                         "it with model.load_state_dict into the model it was saved from", key="state_dict")
    raise SuiteError(f"not an official SAN checkpoint: none of its {count(len(keys), 'key')} is a self-attention "
                     f"weight (layer<N>.<M>.sam.*); first key {keys[0]!r}", key="state_dict")


def _prefix(template: str) -> re.Pattern[str]:
    return re.compile("^" + template.replace(".", r"\.").replace("{i}", r"(?P<i>\d)").replace("{b}", r"(?P<b>\d+)"))


def _rename(key: str, tree: list[tuple[str, str]], block: list[tuple[str, str]]) -> str | None:
    for source, target in tree:
        match = _prefix(source).match(key)
        if match:
            rest = key[match.end():]
            if "{b}" in source:
                rest = next((new + rest[len(old):] for old, new in block if rest.startswith(old)), rest)
            return target.format(**match.groupdict()) + rest
    return None


def official_to_suite_key(key: str) -> str | None:
    """Our state_dict key for an official one (None if the official tree has no such key)."""
    return _rename(key, _TREE, _IN_BLOCK)


def suite_to_official_key(key: str) -> str | None:
    """The official key for one of ours, so errors about a checkpoint speak its names."""
    return _rename(key, [(ours, theirs) for theirs, ours in _TREE], [(ours, theirs) for theirs, ours in _IN_BLOCK])


def load_official_san(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy an official hszhao/SAN state_dict into `model` (a suite SAN); returns the model.

    The model must be built with the official operator (relation 'subtraction' pairwise or
    'concatenation' patchwise, gamma 'official', transforms 'separate', pairwise position encoding
    'relative', or 'none' for a checkpoint without sam.conv_p); layer counts, classes and patchwise
    footprints are checked through the tensor shapes. A pairwise footprint and the padding shape no
    tensor, so no checkpoint can tell them: build the model with those the checkpoint was trained
    with (the official configs: footprint 7, reflection padding). Any unknown, missing or mis-shaped
    key raises SuiteError naming it. `state_dict` may be a whole training checkpoint of the official
    `tool/train.py` ({'epoch', 'state_dict', ...}), and `model` may be wrapped in
    (Distributed)DataParallel.
    """
    from suite.models.san import SelfAttention

    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        load_official_san(model.module, state_dict)
        return model
    state_dict = _weights(state_dict)
    attention = [(name, m) for name, m in model.named_modules() if isinstance(m, SelfAttention)]
    if not attention:
        raise SuiteError(f"official SAN checkpoints load into a SAN model (san10_pairwise, ...), not a "
                         f"{type(model).__name__}", key="model")
    for name, module in attention:
        if module.relation != _OFFICIAL_RELATION[module.mode]:
            raise SuiteError(
                f"official checkpoints use the {_OFFICIAL_RELATION[module.mode]!r} relation, "
                f"this model uses {module.relation!r} (at {name})",
                key="relation",
                choices=[_OFFICIAL_RELATION[module.mode]],
            )
        if module.gamma_kind != "official":
            raise SuiteError(f"official checkpoints use gamma 'official', this model uses {module.gamma_kind!r}",
                             key="gamma", choices=["official"])
        if module.transforms != "separate":
            # the official code has only separate phi, psi and beta; a shared model lacks some of
            # their convs (and 'shared' has another gamma width): refused by what it is, not by a key
            raise SuiteError(f"official checkpoints have separate transformations (phi, psi, beta), this model "
                             f"uses transforms={module.transforms!r}: build it with transforms='separate'",
                             key="transforms", choices=["separate"])
    # (Distributed)DataParallel's prefix: dropped to match the official tree, kept in the keys errors name
    prefix = "module." if all(str(k).startswith("module.") for k in state_dict) else ""
    ours = model.state_dict()
    _check_official(state_dict, prefix)
    _check_family(attention[0][1], state_dict)
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        target = official_to_suite_key(str(key)[len(prefix):])
        if target is None or target not in ours:
            raise SuiteError(f"unexpected key in the official state_dict (no counterpart in {type(model).__name__}): "
                             "check the model's depth and position_encoding", key=key)
        if not isinstance(value, torch.Tensor):
            raise SuiteError(f"expected a tensor, got {type(value).__name__}", key=key)
        if tuple(value.shape) != tuple(ours[target].shape):
            raise SuiteError(
                f"shape {tuple(value.shape)} does not fit {target} {tuple(ours[target].shape)}: "
                "check the model's depth, footprint, share_planes, position_encoding and num_classes",
                key=key,
            )
        mapped[target] = value
    # num_batches_tracked only counts BN updates (no effect in eval); older checkpoints lack it.
    missing = [k for k in ours if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        official = prefix + (suite_to_official_key(missing[0]) or missing[0])
        raise SuiteError(f"the official state_dict lacks {len(missing)} tensor(s) of the model, first {official!r} "
                         f"(the model's {missing[0]!r})", key=official)
    model.load_state_dict(mapped, strict=False)
    return model
