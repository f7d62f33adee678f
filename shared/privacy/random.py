"""Randomness that DP guarantees rest on: a CSPRNG by default, a seeded stream on request.

Every draw a guarantee depends on -- Gaussian noise, Poisson batch masks, negative samples,
item-factor dropout masks -- comes from a :class:`DPRandom`:

- :class:`SecureRandom` (the default): the ChaCha20 keystream of the ``cryptography``
  package under a fresh 256-bit key from the operating system. Nobody, the server included,
  can regenerate or predict it. (``torch.Generator`` on CPU keeps only 32 bits of its seed,
  so a seed drawn from the OS can be brute-forced; it is never used for DP randomness.)
- :class:`SeededRandom` (``reproducible-noise=true``): a PCG64 stream from public seeds, for
  bit-equal experiments only. The guarantee is void (every report says so), and the process
  warns once, loudly.

Gaussian samples are made in float64 by the Box-Muller transform and only then rounded to
the tensor's dtype, so the float32 values added to gradients do not carry the gaps of a
float32 sampler (the floating-point attacks on DP noise of Mironov 2012 and Jin et al. 2022).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

# torch is imported by the methods that return tensors: a server drawing numpy noise, or
# none at all, need not load it.
if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_TWO_PI = 2.0 * math.pi
_MANTISSA = 2.0**-53
# cryptography's ChaCha20 takes a 16-byte nonce whose first 4 bytes (little-endian) are the
# block counter: it starts at zero, the other 12 bytes are random. One key and nonce then
# yield 2^32 blocks of 64 bytes.
_COUNTER_BYTES = 4
_MAX_BYTES = (2**32 - 1) * 64
# Pairs per chunk of the Gaussian transform: its buffers stay in the CPU's cache.
_CHUNK = 16_384
# Keystream bytes per cipher call, and the zeros they encrypt: the cipher writes straight
# into the caller's array (allocating the plaintext and the ciphertext per call cost more
# than ChaCha20 itself).
_STREAM_CHUNK = 1 << 20
_ZEROS = memoryview(bytes(_STREAM_CHUNK))


@contextmanager
def _on_this_thread() -> Iterator[None]:
    """Torch's intra-op threads off for the block (restored after)."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class DPRandom(ABC):
    """A source of uniform words and what DP training draws from them."""

    secure: bool

    @abstractmethod
    def words(self, n: int) -> np.ndarray:
        """``n`` independent uniform 64-bit words (``uint64``)."""

    def uniform(self, shape: int | Sequence[int]) -> np.ndarray:
        """Uniform float64 in the open interval (0, 1)."""
        size = int(np.prod(shape))
        top53 = (self.words(size) >> np.uint64(11)).astype(np.float64)
        return ((top53 + 0.5) * _MANTISSA).reshape(shape)

    def normal(self, shape: int | Sequence[int], std: float = 1.0) -> np.ndarray:
        """Independent N(0, std²) samples in float64 (Box-Muller on pairs of uniforms)."""
        return self.normal_torch(shape, std).numpy()

    def normal_torch(self, shape: int | Sequence[int], std: float = 1.0) -> torch.Tensor:
        """:meth:`normal` as a CPU float64 tensor.

        Computed in cache-sized chunks on the calling thread alone (vectorised): torch
        splits transcendental ops into small parallel pieces, and an intra-op pool that
        other processes compete for (simulation workers, the co-occurrence release's
        processes) then costs more than it gains. It is the cost of DP-SGD noise on a large
        item table.
        """
        if std < 0:
            raise ValueError(f"noise std must be >= 0, got {std}")
        with _on_this_thread():
            return self._normal_torch(shape, std)

    def _normal_torch(self, shape: int | Sequence[int], std: float) -> torch.Tensor:
        import torch

        size = int(np.prod(shape))
        half = (size + 1) // 2
        out = torch.empty(2 * half, dtype=torch.float64)
        scratch = torch.empty(min(_CHUNK, half), dtype=torch.float64)
        for start in range(0, half, _CHUNK):
            end = min(start + _CHUNK, half)
            k = end - start
            # Each chunk of k pairs reads the next 2k words (kept in cache): the radius from
            # the first k, the angle from the next k, as uniforms in (0, 1) from their top 53
            # bits; each is computed in the output slot it ends up in.
            words = torch.from_numpy((self.words(2 * k) >> np.uint64(11)).view(np.int64))
            r, a = out[start:end], out[half + start : half + end]
            r.copy_(words[:k]).add_(0.5).mul_(_MANTISSA)
            r.log_().mul_(-2.0 * std * std).sqrt_()  # std * sqrt(-2 ln u1)
            a.copy_(words[k:]).add_(0.5).mul_(_MANTISSA * _TWO_PI)
            cos = torch.cos(a, out=scratch[:k])
            a.sin_().mul_(r)
            r.mul_(cos)
        return out[:size].reshape(shape if isinstance(shape, int) else tuple(shape))

    def integers(self, high: int, shape: int | Sequence[int]) -> np.ndarray:
        """Uniform integers in ``[0, high)`` (int64; bias below ``high / 2^64``)."""
        if high < 1:
            raise ValueError(f"high must be >= 1, got {high}")
        size = int(np.prod(shape))
        return (self.words(size) % np.uint64(high)).astype(np.int64).reshape(shape)

    def bernoulli(self, p: float, shape: int | Sequence[int]) -> np.ndarray:
        """Independent booleans, each true with probability ``p``."""
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        return self.uniform(shape) < p

    # torch conveniences: drawn here, on the CPU, then moved to the tensor's device.

    def normal_like(self, reference: torch.Tensor, std: float) -> torch.Tensor:
        """N(0, std²) noise of ``reference``'s shape, dtype and device."""
        noise = self.normal_torch(tuple(reference.shape), std)
        return noise.to(device=reference.device, dtype=reference.dtype)

    def add_normal_each(self, values: Sequence[torch.Tensor], std: float) -> list[torch.Tensor]:
        """``value + N(0, std²)`` for every tensor, summed in float64, rounded once to its dtype.

        The noise is one draw split over ``values`` in order (one draw per optimizer step
        rather than one per parameter: the same distribution, independent noise on every
        coordinate, with the transform's fixed cost paid once).
        """
        sizes = [int(v.numel()) for v in values]
        noise = self.normal_torch(sum(sizes), std)
        out = []
        for value, part in zip(values, noise.split(sizes), strict=True):
            summed = part.view(value.shape).to(value.device).add_(value)  # in float64
            out.append(summed.to(value.dtype))
        return out

    def integers_torch(self, high: int, shape: Sequence[int]) -> torch.Tensor:
        """:meth:`integers` as a CPU ``torch.long`` tensor."""
        import torch

        return torch.from_numpy(self.integers(high, shape))

    def uniform_torch(self, shape: Sequence[int]) -> torch.Tensor:
        """:meth:`uniform` as a CPU float32 tensor (masks)."""
        import torch

        return torch.from_numpy(self.uniform(shape).astype(np.float32))


class SecureRandom(DPRandom):
    """ChaCha20 keyed with 256 fresh bits from the OS (``os.urandom``)."""

    secure = True

    def __init__(self) -> None:
        # A random counter would overflow after a random, possibly tiny, number of blocks.
        self.nonce = bytes(_COUNTER_BYTES) + os.urandom(16 - _COUNTER_BYTES)
        cipher = Cipher(algorithms.ChaCha20(os.urandom(32), self.nonce), mode=None)
        self._stream = cipher.encryptor()
        self._used = 0

    def words(self, n: int) -> np.ndarray:
        """The next ``8 n`` bytes of the keystream as ``n`` words."""
        size = 8 * int(n)
        self._used += size
        if self._used > _MAX_BYTES:
            raise RuntimeError("a SecureRandom's keystream is spent; make a new one")
        out = np.empty(int(n), dtype=np.uint64)
        view = out.view(np.uint8).data  # a writable buffer the cipher fills in place
        for start in range(0, size, _STREAM_CHUNK):
            end = min(start + _STREAM_CHUNK, size)
            self._stream.update_into(_ZEROS[: end - start], view[start:end])
        return out


class SeededRandom(DPRandom):
    """PCG64 from public seeds: reproducible, and therefore no privacy at all."""

    secure = False

    def __init__(self, *seeds: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence([int(s) for s in seeds]))

    def words(self, n: int) -> np.ndarray:
        """The next ``n`` words of the seeded stream."""
        return np.asarray(self._bits.random_raw(int(n)), dtype=np.uint64)


@cache
def warn_not_secure(what: str) -> None:
    """Warn once per process, loudly, that ``what`` draws DP randomness from public seeds."""
    message = (
        f"{what}: reproducible-noise=true draws DP noise, batch masks and negatives from the "
        "public run seed; anyone who knows the seed can remove the noise, so NO privacy "
        "guarantee holds. Use it only for bit-equal experiments."
    )
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)


def dp_random(*, reproducible: bool, seeds: Sequence[int] = (), what: str = "DP") -> DPRandom:
    """The randomness of one DP computation: secure, or seeded from ``seeds`` if asked."""
    if not reproducible:
        return SecureRandom()
    warn_not_secure(what)
    return SeededRandom(*seeds)
