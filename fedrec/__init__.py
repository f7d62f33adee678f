"""fedrec: federated, privacy-preserving recommendations.

The import root. ``pyproject.toml`` maps the project's top-level folders into it, so an
import path names a folder that is not literally there:

- ``fedrec.simulation``  (``fedrec/simulation/``) what ``fedrec simulate``, ``evaluate`` and
  ``train-central`` run: the simulation runner, the plain loop, run evaluation
- ``fedrec.shared``      (``shared/``)      config, data, models, privacy, evaluation,
  checkpoints: plain Python for both sides
- ``fedrec.client``      (``client/``)      Flower ClientApp over the client's task
- ``fedrec.server``      (``server/``)      Flower ServerApp, the round's rules, serving, API
- ``fedrec.simulations`` (``simulations/``) scenario files, benchmark drivers and reports
- ``fedrec.cli``         (``cli/``)         the ``fedrec`` command

docs/architecture.md has the table and each module's job.
"""

__version__ = "0.1.0"
