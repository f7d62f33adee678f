"""DP randomness: a CSPRNG by default, right distributions, a seeded stream on request."""

import numpy as np
import pytest
from scipy import stats

from fedrec.shared.privacy import SecureRandom, SeededRandom, dp_random


def test_the_keystream_counter_starts_at_zero() -> None:
    # Regression: a random 16-byte nonce put a random value in ChaCha20's 32-bit block
    # counter, so a stream could run out after a few blocks (a federation crashed).
    for _ in range(50):
        assert SecureRandom().nonce[:4] == bytes(4)
    rng = SecureRandom()
    assert rng.words(2**20).shape == (2**20,)  # 8 MiB from one stream


def test_two_secure_streams_differ_and_seeded_ones_repeat() -> None:
    assert not np.array_equal(SecureRandom().words(16), SecureRandom().words(16))
    np.testing.assert_array_equal(SeededRandom(1, 2).words(16), SeededRandom(1, 2).words(16))
    assert not np.array_equal(SeededRandom(1, 2).words(16), SeededRandom(1, 3).words(16))
    assert dp_random(reproducible=False).secure
    with pytest.warns(UserWarning, match="NO privacy guarantee holds"):
        assert not dp_random(reproducible=True, seeds=(5,), what="test-only").secure


@pytest.mark.parametrize("rng", [SecureRandom(), SeededRandom(0)])
def test_samplers_have_the_right_distributions(rng) -> None:  # type: ignore[no-untyped-def]
    normal = rng.normal(200_001, std=2.5)
    assert normal.dtype == np.float64 and normal.shape == (200_001,)
    assert stats.kstest(normal / 2.5, "norm").pvalue > 1e-4
    u = rng.uniform(100_000)
    assert 0 < u.min() and u.max() < 1 and stats.kstest(u, "uniform").pvalue > 1e-4
    ints = rng.integers(7, (70_000,))
    assert set(np.unique(ints)) == set(range(7))
    assert stats.chisquare(np.bincount(ints, minlength=7)).pvalue > 1e-4
    assert abs(rng.bernoulli(0.3, 100_000).mean() - 0.3) < 0.01


def test_the_chunked_gaussian_is_box_muller_of_the_stream() -> None:
    # The fast path reads the stream a chunk of pairs at a time (the radius's words, then
    # the angle's); over sizes around the chunk length it must be the textbook transform
    # of exactly those words, cosines first, sines second.
    from fedrec.shared.privacy.random import _CHUNK

    for size in (1, 2, 7, 2 * _CHUNK - 1, 2 * _CHUNK, 2 * _CHUNK + 1, 50_001):
        half = (size + 1) // 2
        stream = SeededRandom(9, size)
        cos, sin = [], []
        for start in range(0, half, _CHUNK):
            k = min(_CHUNK, half - start)
            u = ((stream.words(2 * k) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
            radius = np.sqrt(-2.0 * np.log(u[:k]))
            cos.append(radius * np.cos(2.0 * np.pi * u[k:]))
            sin.append(radius * np.sin(2.0 * np.pi * u[k:]))
        expected = np.concatenate(cos + sin)[:size]
        got = SeededRandom(9, size).normal((size,), std=1.5)
        np.testing.assert_allclose(got, 1.5 * expected, rtol=1e-12, atol=1e-12)


def test_secure_words_are_the_chacha20_keystream(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The words are written by the cipher straight into the output array, a chunk at a
    # time: across chunk boundaries and odd sizes they must be exactly the keystream that
    # encrypting zeros under the same key and nonce gives.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    from fedrec.shared.privacy import random as dprandom

    fixed = iter([bytes(range(12)), bytes(range(32))])  # nonce tail, then key
    monkeypatch.setattr(dprandom.os, "urandom", lambda n: next(fixed)[:n])
    rng = dprandom.SecureRandom()
    reference = Cipher(algorithms.ChaCha20(bytes(range(32)), rng.nonce), mode=None).encryptor()
    chunk_words = dprandom._STREAM_CHUNK // 8
    for n in (1, 3, chunk_words - 1, chunk_words, chunk_words + 1, 2 * chunk_words + 5, 0):
        expected = np.frombuffer(reference.update(bytes(8 * n)), dtype=np.uint64)
        np.testing.assert_array_equal(rng.words(n), expected)
