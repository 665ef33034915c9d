"""Rotated and flipped views of the test images, for SAN's zero-shot robustness test: a network
trained on upright images is evaluated, unchanged, on images turned in ways it never saw
(SAN, Sec. 5: self-attention generalises to them better than convolution).

The views are the dihedral turns that a random left-right flip in training (CIFAR's and
ImageNet's augmentation; digits has none) does not already cover: a network that has learned
left-right invariance sees each of them as a different image. An upside-down flip and a
180-degree turn differ only by a left-right flip, so such a network scores them alike. The
paper's own list of views is not in this project's reference material; these four are the
non-trivial cases a left-right-augmented network can be asked about.

A view acts on a batch (N, C, H, W) after normalisation (per-channel, so it commutes with the
view) and after the centre crop (square, so cropping commutes with a quarter turn, up to a
one-pixel shift where the crop margin is odd, and the resize's rounding): evaluating the view of
the batch is, to that pixel, evaluating the view of each image through the usual test transform.
Names carry the turn's sense as seen on screen (row 0 at the top).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # suite.metrics reads the names: no torch at import
    import torch

VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "flip_ud": lambda x: x.flip(-2),
    "rot90_cw": lambda x: x.rot90(-1, (-2, -1)),  # torch turns from the first axis towards the second: counter-clockwise
    "rot90_ccw": lambda x: x.rot90(1, (-2, -1)),
    "rot180": lambda x: x.rot90(2, (-2, -1)),
}

# The result metrics the views give each run: top-1 and top-5 error (%) per view.
VIEW_METRICS = tuple(f"top{k}_err_{name}" for name in VIEWS for k in (1, 5))
