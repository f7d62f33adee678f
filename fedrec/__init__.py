"""fedrec: federated, privacy-preserving recommendations.

The import root. The code lives in the top-level folders the project is organised by,
mapped into this namespace by ``pyproject.toml``:

- ``fedrec.shared``      (``shared/``)      data, models, metrics, privacy, checkpoints
- ``fedrec.client``      (``client/``)      Flower ClientApp and the local DP trainer
- ``fedrec.server``      (``server/``)      Flower ServerApp, strategy, model store, HTTP API
- ``fedrec.simulations`` (``simulations/``) scenario configs, runners, benchmarks
- ``fedrec.cli``         (``cli/``)         the ``fedrec`` command
"""

__version__ = "0.1.0"
