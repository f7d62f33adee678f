"""``fedrec bench ...``: measure, then write JSON + Markdown under docs/benchmarks/.

One module per group of benchmarks; :mod:`.common` holds the Typer group and the options
they share. Commands are registered here, in the order ``fedrec bench --help`` lists them.
"""

from fedrec.cli.bench import coldstart, cooccurrence, privacy, quality, systems
from fedrec.cli.bench.common import bench_app

for _name, _command in (
    ("quality", quality.quality),
    ("cold-start", coldstart.cold_start),
    ("encoder", systems.encoder),
    ("privacy", privacy.privacy),
    ("federation", systems.federation),
    ("attack", privacy.attack),
    ("serve", systems.serve),
    ("deployment", systems.deployment),
    ("privacy-audit", privacy.privacy_audit),
    ("cooccurrence", cooccurrence.cooccurrence),
    ("secagg", cooccurrence.secagg),
):
    bench_app.command(_name)(_command)

__all__ = ["bench_app"]
