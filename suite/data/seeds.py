"""Independent seeds for independent purposes, all derived from the run seed.

Deriving (instead of reusing the run seed everywhere) keeps e.g. the label-noise draw unrelated to
the data order, and lets a per-sample augmentation seed depend on (epoch, index) alone, so it is
the same whatever worker process or resumed session computes it.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, e.g. `derive_seed(seed, "label-noise")`."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
