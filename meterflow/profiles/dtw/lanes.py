"""Column profiles regrouped for the kernels: ``LANES`` profiles side by side, slot-major."""

from __future__ import annotations

import numpy as np

LANES = 32  # column profiles per kernel call (measured best of 8/16/32/64 on AVX2)


def lane_blocks(x: np.ndarray, pad: int = 0) -> np.ndarray:
    """Profiles as ``(blocks, pad + slots + pad, LANES)``: block ``b`` lane ``k`` is row
    ``b * LANES + k`` (zero rows at the end). ``pad`` slots of ``+inf`` on both sides make every
    cell outside the profile infinitely expensive, so the narrow-band kernel needs no edge case."""
    n, length = x.shape
    nb = max(1, -(-n // LANES))
    padded = np.zeros((nb * LANES, length + 2 * pad))
    padded[:, :pad] = np.inf
    padded[:, pad + length :] = np.inf
    padded[:n, pad : pad + length] = x
    return np.ascontiguousarray(padded.reshape(nb, LANES, -1).transpose(0, 2, 1))
