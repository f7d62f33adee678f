"""The `fedrec` command as a user runs it (subprocess: real entry point, real exit codes)."""

import subprocess
import sys
from pathlib import Path

import pytest


def _fedrec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedrec", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_help_lists_the_commands() -> None:
    out = _fedrec("--help")
    assert out.returncode == 0
    for command in (
        "data",
        "train-central",
        "simulate",
        "serve",
        "evaluate",
        "demo",
        "bench",
        "certs",
        "catalog",
        "node",
    ):
        assert command in out.stdout


def test_data_command_on_a_generic_csv(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating,timestamp\n1,10,5,1\n1,11,4,2\n1,12,3,3\n2,10,4,1\n")
    out = _fedrec("data", "-c", "dataset=generic", "-c", f"data-path={ratings}")
    assert out.returncode == 0, out.stderr
    assert "interactions" in out.stdout and "4" in out.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "-c", "num-round=3"], "unknown config key"),
        (["data", "-c", "fraction-train=2"], "fraction-train"),
        (["data", "-s", "no-such-scenario"], "no scenario"),
        (["data", "-c", "dataset=generic", "-c", "data-path=/nonexistent/r.csv"], "/nonexistent"),
        (
            ["certs", "server", "--ca", "/nonexistent/ca", "--host", "localhost", "--out", "x"],
            "no CA in /nonexistent/ca",
        ),
        (["bench", "encoder", "--round-clients", "10,x"], "comma-separated integers"),
        (["bench", "encoder", "--round-clients", "10,-1"], "must be >= 0"),
        (
            [
                "bench",
                "cold-start",
                "--repeats",
                "2",
                "-c",
                "dp-enabled=true",
                "-c",
                "reproducible-noise=true",
            ],
            "with reproducible-noise=true",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(args: list[str], needle: str) -> None:
    out = _fedrec(*args)
    assert out.returncode == 2
    assert needle in (out.stdout + out.stderr)
    assert "Traceback" not in out.stdout + out.stderr


def test_malformed_ratings_file_names_file_and_line(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating,timestamp\n1,10,5,1\n1,11,abc,2\n")
    out = _fedrec("data", "-c", "dataset=generic", "-c", f"data-path={ratings}")
    assert out.returncode == 2
    text = " ".join((out.stdout + out.stderr).split())
    assert "ratings.csv" in text and "line 3" in text


def test_bench_lists_the_text_benchmarks_and_rerenders_cold_start(tmp_path: Path) -> None:
    out = _fedrec("bench", "--help")
    assert out.returncode == 0
    assert "cold-start" in out.stdout and "encoder" in out.stdout
    missing = _fedrec("bench", "cold-start", "--render-only", "--output-dir", str(tmp_path))
    assert missing.returncode == 2 and "run the benchmark first" in missing.stdout + missing.stderr


def test_config_option_help_names_the_pyproject_table() -> None:
    # Bug: rich read "[tool.flwr.app.config]" as markup and printed "(keys of )".
    from typer.testing import CliRunner

    from fedrec.cli.main import app

    out = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert "keys of [tool.flwr.app.config]" in out.output


def test_bench_quality_can_run_the_baselines_alone_and_checks_epsilons(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrec.cli.main import app

    runner = CliRunner()
    out = runner.invoke(app, ["bench", "quality", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert "--baselines-only" in out.output and "--dp-epsilons" in out.output
    bad = runner.invoke(
        app, ["bench", "quality", "--baselines-only", "--dp-epsilons", "0,4", "--output-dir", "x"]
    )
    assert bad.exit_code == 2 and "epsilons must be > 0" in bad.output


def _tiny_ratings(path: Path, users: int = 30) -> Path:
    rows = ["user,item,rating,timestamp"]
    for u in range(users):
        base = 0 if u % 2 == 0 else 10
        rows += [f"{u},{base + (u + t) % 10},5,{t}" for t in range(7)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_cooccurrence_states_its_guarantee_and_writes_a_checkpoint(tmp_path: Path) -> None:
    ratings = _tiny_ratings(tmp_path / "ratings.csv")
    out = _fedrec(
        "train-cooccurrence",
        *("-c", "dataset=generic", "-c", f"data-path={ratings}", "-c", "text-tower=off"),
        *("-c", "cooccurrence-rank=4", "-c", f"output-dir={tmp_path / 'runs'}"),
    )
    assert out.returncode == 0, out.stderr
    assert "-DP per user (placement secagg" in out.stdout and "NDCG@10" in out.stdout
    assert "to rank on its own" in " ".join(out.stdout.split())  # rich may wrap the line
    assert (tmp_path / "runs" / "cooccurrence" / "checkpoints").is_dir()


def test_bench_cooccurrence_refuses_baselines_of_another_split(tmp_path: Path) -> None:
    import json

    ratings = _tiny_ratings(tmp_path / "ratings.csv")
    (tmp_path / "baselines.json").write_text(
        json.dumps({"settings": {"dataset": "ml-100k"}, "baselines": {}})
    )
    out = _fedrec(
        *("bench", "cooccurrence", "--output-dir", str(tmp_path), "--draws", "1"),
        *("-c", "dataset=generic", "-c", f"data-path={ratings}"),
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    said = " ".join((out.stdout + out.stderr).split())  # rich wraps long lines
    assert "measured with dataset = 'ml-100k'" in said and "--baselines-only" in said


@pytest.mark.slow
def test_bench_cooccurrence_reports_the_exact_ease_arm_against_the_best_baseline(
    tmp_path: Path,
) -> None:
    import json

    ratings = _tiny_ratings(tmp_path / "ratings.csv")
    data = ("-c", "dataset=generic", "-c", f"data-path={ratings}")
    base = _fedrec(
        *("bench", "quality", "--baselines-only", "--name", "baselines"),
        *("--output-dir", str(tmp_path), *data),
    )
    assert base.returncode == 0, base.stderr
    common = ("--output-dir", str(tmp_path), "--draws", "1", "--epsilons", "4")
    out = _fedrec("bench", "cooccurrence", *common, *data, "-c", "cooccurrence-rank=4")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "cooccurrence.json").read_text())
    ease = result["exact_ease"]
    assert len(ease["tried"]) == 15 and ease["chosen"] in [
        {k: row[k] for k in ease["chosen"]} for row in ease["tried"]
    ]
    best = max(ease["tried"], key=lambda row: row["valid"])
    assert ease["chosen"]["cooccurrence-l2"] == best["cooccurrence-l2"]  # chosen on validation
    paired = ease["paired"]
    assert paired["baseline"] == result["baselines"]["best"]
    # the refitted baseline is the one baselines.json measured, user by user
    assert paired["baseline_ndcg"] == pytest.approx(result["baselines"]["best_ndcg"], abs=1e-6)
    for arm in ("collaborative", "with-text"):
        assert paired[arm]["ndcg"] == pytest.approx(
            ease["arms"][arm]["metrics"]["ndcg@10_full"], abs=1e-9
        )
    before = (tmp_path / "cooccurrence.md").read_text()
    assert "**No DP**" in before
    again = _fedrec("bench", "cooccurrence", "--render-only", "--output-dir", str(tmp_path))
    assert again.returncode == 0 and (tmp_path / "cooccurrence.md").read_text() == before


def test_bench_cooccurrence_scale_writes_its_report_and_rerenders_it(tmp_path: Path) -> None:
    import json

    ratings = _tiny_ratings(tmp_path / "ratings.csv")
    common = ("--output-dir", str(tmp_path), "--draws", "1", "--scale")
    out = _fedrec(
        *("bench", "cooccurrence", *common),
        *("-c", "dataset=generic", "-c", f"data-path={ratings}", "-c", "cooccurrence-rank=4"),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "cooccurrence-scale.json").read_text())
    assert {r["users"] for r in result["rows"]} == {30 * m for m in (1, 2, 5, 10, 30, 100)}
    before = (tmp_path / "cooccurrence-scale.md").read_text()
    again = _fedrec("bench", "cooccurrence", "--render-only", *common)
    assert again.returncode == 0 and (tmp_path / "cooccurrence-scale.md").read_text() == before


def test_bench_cooccurrence_tune_writes_its_report_and_rerenders_it(tmp_path: Path) -> None:
    import json

    ratings = _tiny_ratings(tmp_path / "ratings.csv")
    common = ("--output-dir", str(tmp_path), "--draws", "1", "--tune")
    out = _fedrec(
        *("bench", "cooccurrence", *common),
        *("-c", "dataset=generic", "-c", f"data-path={ratings}"),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "cooccurrence-tuning.json").read_text())
    assert "outer valid" in result["targets"] and len(result["rows"]) == 175
    before = (tmp_path / "cooccurrence-tuning.md").read_text()
    again = _fedrec("bench", "cooccurrence", "--render-only", *common)
    assert again.returncode == 0 and (tmp_path / "cooccurrence-tuning.md").read_text() == before
    both = _fedrec("bench", "cooccurrence", "--scale", *common)
    assert both.returncode == 2 and "pick one" in both.stdout + both.stderr
