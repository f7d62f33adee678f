"""Where one cold-start request's time goes, in process: the stages of ``cold_start``.

The serving model is loaded here (as the service loads it, on the same thread limit) and
each kind of request is run under :mod:`cProfile`. A stage is a call ``cold_start`` makes
itself, so stages do not overlap; the encoder's forward pass and the tokenizer are
reported inside the encoding stage. cProfile slows Python-level code more than the
encoder's native kernels, so the shares are indicative; the mean is measured without it.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedrec.server.serving import Recommender
from fedrec.server.serving.threads import limit_compute_threads
from fedrec.shared.checkpoint import load_checkpoint

# Stage key -> (module file suffix, function name) of a call made by ``cold_start``.
STAGES = {
    "encode": ("serving/recommender.py", "_text_parts"),
    "liked_similarity": ("serving/scoring.py", "liked_similarity"),
    "scores": ("serving/recommender.py", "_scores"),
    "top": ("serving/scoring.py", "top"),
    "explain_scores": ("serving/recommender.py", "_without_each"),
    "explain_pick": ("serving/explain.py", "explain_by_removal"),
}
# Inside the encoding stage: (stage key, file suffix, function) wherever they are called.
INNER = {
    "encode.forward": ("models/encoder.py", "hidden_states"),
    "encode.tokenize": ("models/encoder.py", "tokenize"),
}
COLD_START = ("serving/recommender.py", "cold_start")

Request = dict[str, Any]


def _find(stats: dict[Any, Any], suffix: str, name: str) -> list[Any]:
    return [f for f in stats if f[0].endswith(suffix) and f[2] == name]


def _stages(profile: cProfile.Profile, n: int) -> tuple[float, dict[str, float]]:
    """The profiled ``cold_start``'s mean ms and each stage's mean ms per request."""
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    top = _find(stats, *COLD_START)
    total = sum(stats[f][3] for f in top) * 1000 / n
    out: dict[str, float] = {}
    for key, (suffix, name) in STAGES.items():
        seconds = 0.0
        for f in _find(stats, suffix, name):
            callers = stats[f][4]
            seconds += sum(callers[c][3] for c in top if c in callers)
        out[key] = seconds * 1000 / n
    for key, (suffix, name) in INNER.items():
        # A method and the module function it wraps may share a name: the outer one.
        out[key] = max((stats[f][3] for f in _find(stats, suffix, name)), default=0.0) * 1000 / n
    staged = sum(v for k, v in out.items() if "." not in k)
    out["other"] = max(total - staged, 0.0)
    return total, out


def _call(rec: Recommender, body: Request) -> None:
    rec.cold_start(body.get("liked_item_ids", ()), body["k"], text=body.get("text"))


def profile_requests(
    run_dir: Path,
    bodies: dict[str, Sequence[Request]],
    *,
    warm: dict[str, Sequence[Request]],
    threads: int = 1,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Per kind: the mean ms of its requests in process, and each stage's share under cProfile.

    ``bodies[kind]`` is timed once plainly and once under the profiler, so each half
    sees its own requests; give texts never seen by ``warm`` for the encoder's cold path.
    """
    limit_compute_threads(threads)
    rec = Recommender.from_checkpoint(load_checkpoint(run_dir))
    for requests in warm.values():
        for body in requests:
            _call(rec, body)
    out: dict[str, Any] = {}
    for kind, requests in bodies.items():
        progress(f"profile, {kind} cold start, in process")
        half = len(requests) // 2
        plain, profiled = requests[:half], requests[half:]
        start = time.perf_counter()
        for body in plain:
            _call(rec, body)
        mean_ms = (time.perf_counter() - start) * 1000 / len(plain)
        profile = cProfile.Profile()
        profile.enable()
        for body in profiled:
            _call(rec, body)
        profile.disable()
        profiled_ms, stages = _stages(profile, len(profiled))
        out[kind] = {
            "requests": len(plain),
            "mean_ms": mean_ms,
            "profiled_requests": len(profiled),
            "profiled_mean_ms": profiled_ms,
            "stages_ms": stages,
        }
    return out
