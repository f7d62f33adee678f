"""``fedrec bench secagg``: the co-occurrence release over Flower's SecAgg+, measured.

Every arm runs the real path: Flower's simulation engine (Ray, one SuperNode per client),
the product's ClientApp with Flower's ``secaggplus_mod``, and on the server the product's
slice loop (:func:`fedrec.server.cooccurrence.release_slices`) driving Flower's
``SecAggPlusWorkflow``, whose four stages the server times and weighs
(:class:`fedrec.server.secagg.StageCost`). Nothing is mocked. An arm runs the first
``slices`` slices of the release (0: all of them); one that stops early writes no model.

Per arm (``clients`` SuperNodes; below ML-100K's 943 users the users are split over the
clients, so every arm releases the same catalogue's statistic, the same slices):

- the seconds of each measured slice and of each SecAgg+ stage, with the part the server
  waited for the clients' replies (the rest is the server's own work);
- the bytes each client sends and receives per slice, by stage, counted from the messages'
  contents (:func:`fedrec.shared.serialization.content_bytes`);
- peak RSS of the driver process (the ServerApp and Flower's in-memory SuperLink) and of
  the whole process tree (with Ray's workers), RSS alone every 0.5 s (PSS would cost the
  driver, the bottleneck, CPU of its own);
- where the driver's threads are during the steady slices (:class:`ThreadSampler`);
- the share graph's privacy, from the product's functions: shares per client, the
  threshold ``t`` each noise share is sized for, each client's noise std, and the noise on
  the sum when every client survives, against central placement's σ.

What is extrapolated is computed here and stored beside its inputs: the seconds of a whole
release where fewer than all slices were measured (the measured slices, plus each slice
not measured at the mean of the measured slices after the first), and a least-squares
quadratic of that steady slice time in the number of clients.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedrec.server.cooccurrence import plan_over_flower, release_slices
from fedrec.server.secagg import STAGES, noise_survivors, secagg_shares, secagg_threshold
from fedrec.shared.checkpoint import run_id
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_catalog, load_split
from fedrec.shared.logs import show_fedrec_logs
from fedrec.shared.privacy.accounting import account
from fedrec.shared.privacy.cooccurrence import plan_release
from fedrec.simulation.runner import simulate
from fedrec.simulations.measure import PeakMemory, ThreadSampler, machine_stamp
from fedrec.simulations.report import run_settings, save, timestamp

logger = logging.getLogger(__name__)

CLIENTS = (50, 100, 200, 400, 943)
SHARES = 7  # secagg-num-shares as a count: each client's neighbourhood, itself included
SLICES = 2  # per arm: the first with the actors' warm-up, the second steady
FULL_UP_TO = 50  # arms with at most this many clients measure every slice
# Share graphs whose privacy the report tabulates for the largest federation (counts; 1.0:
# every client). Computed, not simulated.
SHARE_GRAPHS = (7.0, 15.0, 31.0, 63.0, 127.0, 1.0)
# Share graphs whose Shamir sharing (one client's share-keys work) is timed, then fitted.
SHAMIR_SHARES = (7.0, 15.0, 31.0, 63.0)
# Other max-in-flight (messages stored at once per stage) timed at the largest federation.
WINDOWS = (16,)
MIB = 2**20


def _release_app(overrides: dict[str, Any], slices: int, out: dict[str, Any]) -> ServerApp:
    """A ServerApp that runs the first ``slices`` slices of the release and keeps their costs.

    From the second slice on it samples where the driver's threads are (its ServerApp,
    Flower's engine pumping messages to and from the actors, Ray's client side): the
    steady slices' ``threads``.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        show_fedrec_logs()
        out["main_started"] = time.perf_counter()
        cfg = resolve_config(context.run_config, overrides)
        run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
        release = plan_over_flower(grid, cfg, load_catalog(cfg.data), run_id(run_dir))
        out["clients"] = len(release.nodes)
        out["slices_total"] = len(release.slices)
        out["entries"] = release.size
        parts = release_slices(grid, cfg, release)
        out["slices"] = [next(parts).cost()]
        with ThreadSampler() as sampler:
            out["slices"] += [part.cost() for part in islice(parts, slices - 1 if slices else None)]
        out["threads"] = sampler.summary()

    return app


def share_graph(cfg: FedRecConfig, clients: int) -> dict[str, Any]:
    """What a share graph costs in noise, by the product's own rules and release plan."""
    privacy = cfg.privacy
    t = secagg_threshold(privacy, clients)
    sized_for = noise_survivors(privacy, clients)
    plan = plan_release(privacy, cfg.cooccurrence, clients, survivors=sized_for)
    assert plan.delta is not None and plan.accountant is not None
    # Every client adds its share; with all of them in the sum their variances add up.
    all_survive = plan.client_std * math.sqrt(clients)
    same_noise = account([(all_survive, 1.0, 1)], plan.delta, plan.accountant).epsilon
    return {
        "clients": clients,
        "secagg_num_shares": privacy.secagg_num_shares,
        "shares": secagg_shares(privacy, clients),
        "threshold": t,
        "min_survivors": privacy.secagg_min_survivors,
        "noise_survivors": sized_for,
        "colluders": plan.colluders,
        "epsilon": plan.epsilon,
        "delta": plan.delta,
        "central_sigma": plan.noise_multiplier,
        "client_std": plan.client_std,
        "sum_sigma_all_survive": all_survive,
        "vs_central": all_survive / plan.noise_multiplier,
        "epsilon_of_that_noise_if_central": same_noise,
    }


def _per_client(slice_cost: dict[str, Any]) -> dict[str, Any]:
    """A slice's bytes per client (mean over the clients), each way and by stage."""
    sent = {s["stage"]: s["received_bytes"] / max(s["replies"], 1) for s in slice_cost["stages"]}
    received = {s["stage"]: s["sent_bytes"] / max(s["messages"], 1) for s in slice_cost["stages"]}
    return {
        "sent_by_stage": sent,
        "received_by_stage": received,
        "sent": sum(sent.values()),
        "received": sum(received.values()),
        "largest_reply": max(s["largest_reply_bytes"] for s in slice_cost["stages"]),
    }


def summarise(arm: dict[str, Any]) -> dict[str, Any]:
    """An arm's measured slices in the report's terms, and its whole release.

    The whole release is measured where every slice was, else extrapolated by the module's
    rule (the slices not measured at the mean steady slice).
    """
    slices = arm["slices"]
    measured = len(slices)
    full = measured == arm["slices_total"]
    # Steady: every measured slice after the first (actor warm-up) that has the full size.
    steady = [s for s in slices[1:] if s["entries"] == slices[0]["entries"]] or slices
    steady_s = float(np.mean([s["seconds"] for s in steady]))
    stage_s = {
        stage: float(np.mean([s["stages"][i]["seconds"] for s in steady]))
        for i, stage in enumerate(STAGES)
    }
    wait_s = {
        stage: float(np.mean([s["stages"][i]["wait_seconds"] for s in steady]))
        for i, stage in enumerate(STAGES)
    }
    per_client = [_per_client(s) for s in slices]
    release_s = sum(s["seconds"] for s in slices) + (arm["slices_total"] - measured) * steady_s
    out = {
        "measured_slices": measured,
        "all_slices_measured": full,
        "steady_slices": [s["slice"] for s in steady],
        "steady_slice_s": steady_s,
        "first_slice_s": slices[0]["seconds"],
        "stage_s": stage_s,
        "stage_wait_s": wait_s,
        "bytes_per_client": per_client[0 if len(per_client) == 1 else 1],
        "release_s": release_s,
        "release_s_extrapolated": not full,
    }
    if full:
        out["release_bytes_per_client"] = {
            "sent": sum(p["sent"] for p in per_client),
            "received": sum(p["received"] for p in per_client),
        }
    return out


def growth_fit(points: Sequence[tuple[float, float]]) -> dict[str, Any] | None:
    """Least squares ``y = a + b x + c x²`` through ``points`` (a line through two), inputs kept.

    The steady slice grows faster than the clients: Flower's engine pass costs nodes x
    stored messages, so a line would not describe it.
    """
    xs = sorted({x for x, _ in points})
    if len(xs) < 2:
        return None
    x, y = np.array(points, dtype=np.float64).T
    degree = min(2, len(xs) - 1)
    coefficients = [float(c) for c in np.polyfit(x, y, degree)[::-1]]  # a, b[, c]
    return {
        "inputs": [[float(p), float(q)] for p, q in points],
        "coefficients": coefficients,
        "fitted": [fitted_value(coefficients, p) for p in x],
    }


def fitted_value(coefficients: Sequence[float], x: float) -> float:
    """``a + b x + c x² ...`` of a fit's coefficients (constant first)."""
    return float(sum(c * x**k for k, c in enumerate(coefficients)))


# Where a profiled slice's self time is counted, by the file the code is in (first match).
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Flower runs each Shamir split and combination in a thread pool of its own, which the
    # profiler (this thread only) sees as the wait for it: that wait, pool start-up included.
    (
        "Flower's Shamir sharing, in a thread pool per call (the wait for it)",
        (
            "/threading.py",
            "/concurrent/futures/",
        ),
    ),
    (
        "Flower SecAgg+: Shamir wrapper, key agreement, encryption",
        (
            "flwr/common/secure_aggregation/crypto/",
            "flwr/supercore/primitives/",
            "/Crypto/",
            "/cryptography/",
        ),
    ),
    (
        "Flower SecAgg+: masks, quantization, protocol",
        (
            "flwr/common/secure_aggregation/",
            "flwr/client/mod/secure_aggregation/",
            "flwr/server/workflow/secure_aggregation/",
        ),
    ),
    ("Flower messages, records, legacy conversion", ("/flwr/",)),
    ("fedrec (the client's slice, data view, ledger; the server's loop)", ("<fedrec>",)),
    ("copying messages (the in-process transport)", ("/copy.py",)),
)
OTHER = "other"
# (label, file suffix, function): cumulative time of the functions a slice is made of.
PROFILED: tuple[tuple[str, str, str], ...] = (
    ("client: key pairs (setup)", "secaggplus_mod.py", "_setup"),
    ("client: Shamir shares, encrypted (share keys)", "secaggplus_mod.py", "_share_keys"),
    ("client: fedrec's slice handler (collect)", "client/secagg.py", "bridged"),
    ("  its terms", "client/cooccurrence.py", "users_terms"),
    ("  its noise", "shared/privacy/random.py", "normal"),
    ("  its ledger note (sealed state)", "client/cooccurrence.py", "record_release"),
    ("client: quantize and mask (collect)", "secaggplus_mod.py", "_collect_masked_vectors"),
    ("masks: pseudo-random vectors (client and server)", "secaggplus_utils.py", "pseudo_rand_gen"),
    ("server: Shamir reconstruction (unmask)", "crypto/shamir.py", "combine_shares"),
)


def _fedrec_roots() -> tuple[str, ...]:
    import fedrec.client
    import fedrec.server
    import fedrec.shared
    import fedrec.simulation

    return tuple(
        str(Path(m.__file__).parent).replace("\\", "/") + "/"
        for m in (fedrec.client, fedrec.server, fedrec.shared, fedrec.simulation)
        if m.__file__
    )


def _bucket(filename: str, roots: tuple[str, ...]) -> str:
    path = filename.replace("\\", "/")
    for label, needles in BUCKETS:
        if needles == ("<fedrec>",):
            if path.startswith(roots):
                return label
        elif any(n in path for n in needles):
            return label
    return OTHER


def _delegated(filename: str) -> bool:
    """Code whose time is its caller's: builtins (a lock, an allocation) and numpy."""
    return filename == "~" or "/numpy/" in filename.replace("\\", "/")


def self_time_by_package(stats: dict[Any, Any], roots: tuple[str, ...]) -> dict[str, float]:
    """A profile's self time by :data:`BUCKETS`; builtins' and numpy's by their callers'."""
    shares: dict[Any, dict[str, float]] = {}

    def owners(func: Any, seen: frozenset[Any]) -> dict[str, float]:
        if func in shares:
            return shares[func]
        filename = func[0]
        if not _delegated(filename):
            out = {_bucket(filename, roots): 1.0}
        else:
            edges = {c: float(e[2]) for c, e in stats[func][4].items() if c not in seen}
            total = sum(edges.values())
            if total <= 0:
                out = {OTHER: 1.0}
            else:
                out = {}
                for caller, weight in edges.items():
                    up = owners(caller, seen | {func}) if caller in stats else {OTHER: 1.0}
                    for bucket, part in up.items():
                        out[bucket] = out.get(bucket, 0.0) + part * weight / total
        shares[func] = out
        return out

    buckets = {label: 0.0 for label, _ in BUCKETS} | {OTHER: 0.0}
    for func, row in stats.items():
        for bucket, part in owners(func, frozenset()).items():
            buckets[bucket] += float(row[2]) * part
    return buckets


def profile_slice(base: dict[str, Any], clients: int, shares: float) -> dict[str, Any]:
    """Where one steady slice's CPU time goes, by package and by the functions it calls.

    The release over ``clients`` on an in-process grid (the product's ClientApp called in
    this process, no Ray: :class:`~fedrec.simulations.loopback.LoopbackGrid`); the second
    slice under :mod:`cProfile` (the first warms up). Self time is counted where the code
    is; a builtin's (a lock, an allocation) by its callers'.
    """
    import cProfile
    import pstats
    import tempfile

    from fedrec.client.client_app import build_client_app
    from fedrec.simulations.loopback import LoopbackGrid, outside_flower

    with tempfile.TemporaryDirectory() as root, outside_flower():
        settings = _release_settings(base, clients, shares, Path(root))
        cfg = resolve_config({}, settings)
        # A Grid by what it answers, not by class (Flower's Grid is an ABC it does not extend).
        grid = cast(Grid, LoopbackGrid(build_client_app(settings), clients, node_config=True))
        release = plan_over_flower(grid, cfg, load_catalog(cfg.data), run_id(Path(root) / "r"))
        parts = release_slices(grid, cfg, release)
        next(parts)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        part = next(parts)
        profiler.disable()
        wall = time.perf_counter() - started
    stats = cast(dict[Any, Any], pstats.Stats(profiler).stats)  # type: ignore[attr-defined]
    by_package = self_time_by_package(stats, _fedrec_roots())
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _, name), row in stats.items():
        where = (filename.replace("\\", "/"), name)
        cumulative[where] = cumulative.get(where, 0.0) + float(row[3])
    functions = [
        {
            "label": label,
            "function": f"{suffix}: {name}",
            "seconds": sum(
                v for (f, n), v in cumulative.items() if n == name and f.endswith(suffix)
            ),
        }
        for label, suffix, name in PROFILED
    ]
    return {
        "clients": clients,
        "secagg_num_shares": float(shares),
        "slice": part.number,
        "entries": part.end - part.start,
        "wall_s": wall,
        "stages": part.stages,
        "by_package": [{"part": k, "seconds": v} for k, v in by_package.items()],
        "functions": functions,
    }


def shamir_cost(
    cfg: FedRecConfig, clients: int, shares: Sequence[float], *, repeats: int = 3
) -> dict[str, Any]:
    """Flower's Shamir sharing per client for share graphs of ``shares``, timed, and a fit.

    What one client's share-keys stage computes (Flower's ``create_shares`` of its mask
    seed and of its first private key, as ``secaggplus_mod`` does) and what the server's
    unmask stage computes per client (``combine_shares`` of ``t`` shares), best of
    ``repeats``; then a fit ``seconds = c x shares x t`` (the polynomial's evaluations)
    through the measured points, evaluated for every client sharing with every other.
    """
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
    from flwr.supercore.primitives.asymmetric import generate_key_pairs, private_key_to_bytes

    secret_key = private_key_to_bytes(generate_key_pairs()[0])
    rows = []
    for count in shares:
        c = resolve_config({}, {**cfg.to_run_config(), "secagg-num-shares": float(count)})
        s, t = secagg_shares(c.privacy, clients), secagg_threshold(c.privacy, clients)
        split, combine = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            seed_shares = create_shares(os.urandom(32), t, s)
            create_shares(secret_key, t, s)
            split.append(time.perf_counter() - started)
            started = time.perf_counter()
            combine_shares(seed_shares[:t])
            combine.append(time.perf_counter() - started)
        rows.append({"shares": s, "threshold": t, "split_s": min(split), "combine_s": min(combine)})
    st = np.array([r["shares"] * r["threshold"] for r in rows], dtype=np.float64)
    per_pair = float(np.dot(st, [r["split_s"] for r in rows]) / np.dot(st, st))
    every = resolve_config({}, {**cfg.to_run_config(), "secagg-num-shares": 1.0}).privacy
    s_all, t_all = secagg_shares(every, clients), secagg_threshold(every, clients)
    return {
        "clients": clients,
        "private_key_bytes": len(secret_key),
        "rows": rows,
        "fit_seconds_per_share_x_threshold": per_pair,
        "every_client": {
            "shares": s_all,
            "threshold": t_all,
            "split_s_per_client": per_pair * s_all * t_all,
            "from_fit": True,
        },
    }


def _release_settings(
    base: dict[str, Any], clients: int, shares: float, scratch: Path
) -> dict[str, Any]:
    return {
        **base,
        "model": "cooccurrence",
        "user-dp": "secagg",
        "secagg-num-shares": float(shares),
        "output-dir": str(scratch / f"clients-{clients}-shares-{shares:g}"),
        "run-name": "release",
        "min-available-nodes": clients,
    }


def run_arm(
    base: dict[str, Any], clients: int, shares: float, slices: int, scratch: Path
) -> dict[str, Any]:
    """One simulated release (its first ``slices`` slices) over ``clients`` SuperNodes."""
    settings = _release_settings(base, clients, shares, scratch)
    out: dict[str, Any] = {}
    load_before = os.getloadavg()
    logger.info("SecAgg+ arm: %d clients, secagg-num-shares %g", clients, shares)
    started = time.perf_counter()
    with PeakMemory(interval_s=0.5, pss=False) as mem:
        simulate(
            settings,
            num_supernodes=clients,
            server_app=lambda overrides: _release_app(overrides, slices, out),
        )
    wall = time.perf_counter() - started
    if "slices" not in out:
        raise RuntimeError(f"the release over {clients} clients did not run; see the log above")
    arm = {
        "clients": clients,
        "secagg_num_shares": float(shares),
        "max_in_flight": resolve_config({}, settings).federation.max_in_flight,
        "slices_total": out["slices_total"],
        "entries": out["entries"],
        "slices": out["slices"],
        "start_up_s": out["main_started"] - started,
        "wall_s": wall,
        "peak_driver_rss_mib": mem.peak_own_bytes / MIB,
        "peak_tree_rss_mib": mem.peak_bytes / MIB,
        "threads": out["threads"],
        "load_average": [load_before[0], os.getloadavg()[0]],
        "privacy": share_graph(resolve_config({}, settings), clients),
    }
    arm["summary"] = summarise(arm)
    shutil.rmtree(scratch / f"clients-{clients}-shares-{shares:g}", ignore_errors=True)
    logger.info(
        "%d clients: steady slice %.1f s, peak driver %.0f MiB",
        clients,
        arm["summary"]["steady_slice_s"],
        arm["peak_driver_rss_mib"],
    )
    return arm


def whole_release(
    arms: Sequence[dict[str, Any]], fit: dict[str, Any] | None, clients: int
) -> dict[str, Any] | None:
    """The whole release over ``clients``: from that arm's slices if measured, else the fit."""
    arm = next((a for a in arms if a["clients"] == clients), None)
    if arm is not None:
        s = arm["summary"]
        return {
            "clients": clients,
            "slices": arm["slices_total"],
            "steady_slice_s": s["steady_slice_s"],
            "release_s": s["release_s"],
            "from": "measured" if s["all_slices_measured"] else "arm",
        }
    if fit is None or not arms:
        return None
    steady = fitted_value(fit["coefficients"], clients)
    slices = arms[-1]["slices_total"]
    return {
        "clients": clients,
        "slices": slices,
        "steady_slice_s": steady,
        "release_s": slices * steady,
        "from": "fit",
    }


def run_secagg_bench(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    runs_dir: Path,
    clients: Sequence[int] = CLIENTS,
    shares: float = SHARES,
    slices: int = SLICES,
    full_up_to: int = FULL_UP_TO,
    share_sweep: Sequence[float] = (),
    sweep_clients: int = 100,
    windows: Sequence[int] = WINDOWS,
    profile_clients: int = 100,
    shamir_shares: Sequence[float] = SHAMIR_SHARES,
    name: str = "secagg",
    save_report: bool = True,
) -> dict[str, Any]:
    """Run the arms, write JSON + Markdown; returns the result.

    ``share_sweep``: other ``secagg-num-shares`` to time at ``sweep_clients`` clients, the
    cost side of the share graph's trade-off. ``windows``: other ``max-in-flight`` to time
    at the largest federation, the engine's cost against the messages stored at once.
    ``profile_clients``: the in-process profile of one slice (0: none); ``shamir_shares``:
    the share graphs whose Shamir sharing is timed.
    """
    if slices < 2:
        raise ValueError("an arm needs at least 2 slices: the first warms the actors up")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    scratch = runs_dir / f"bench-secagg-{stamp}"
    base = {"text-tower": "off", **(overrides or {})}
    cfg = resolve_config({}, {**base, "user-dp": "secagg", "secagg-num-shares": float(shares)})
    _, split = load_split(cfg.data)
    started = time.perf_counter()
    arms = [
        run_arm(base, n, shares, 0 if n <= full_up_to else slices, scratch)
        for n in clients
        if n <= split.n_users
    ]
    sweep = [run_arm(base, sweep_clients, s, slices, scratch) for s in share_sweep]
    largest = max((n for n in clients if n <= split.n_users), default=0)
    window_arms = [
        run_arm({**base, "max-in-flight": w}, largest, shares, slices, scratch)
        for w in (windows if largest else ())
    ]
    fit = growth_fit([(a["clients"], a["summary"]["steady_slice_s"]) for a in arms])
    profile = profile_slice(base, profile_clients, shares) if profile_clients else None
    graphs = [
        share_graph(
            resolve_config({}, {**base, "user-dp": "secagg", "secagg-num-shares": s}), split.n_users
        )
        for s in SHARE_GRAPHS
    ]
    result: dict[str, Any] = {
        "benchmark": name,
        "date": timestamp(),
        "dataset": cfg.data.dataset,
        "users": split.n_users,
        "items": split.n_items,
        "settings": run_settings(
            cfg.to_run_config(),
            clients=list(clients),
            shares=shares,
            slices=slices,
            full_up_to=full_up_to,
            share_sweep=list(share_sweep),
            sweep_clients=sweep_clients,
            windows=list(windows),
            profile_clients=profile_clients,
        ),
        "machine": machine_stamp(),
        "arms": arms,
        "share_sweep": sweep,
        "window_arms": window_arms,
        "steady_slice_fit": fit,
        "release_at_all_users": whole_release(arms, fit, split.n_users),
        "profile": profile,
        "shamir": shamir_cost(cfg, split.n_users, shamir_shares) if shamir_shares else None,
        "share_graphs": graphs,
    }
    result["wall_s"] = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    if save_report:
        save(result, output_dir, name, kind="secagg")
    return result
