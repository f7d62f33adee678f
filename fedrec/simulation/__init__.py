"""What ``fedrec simulate``, ``fedrec evaluate`` and ``fedrec train-central`` run.

Product code over the server and the client (so it lives here, not in ``shared/``):

- :mod:`~fedrec.simulation.runner`: a federation on Flower's simulation engine;
- :mod:`~fedrec.simulation.plain_loop`: the same rounds in one process, without Flower;
- :mod:`~fedrec.simulation.evaluate`: test-split metrics of a run's checkpoint;
- :mod:`~fedrec.simulation.central`: the centralized reference, as a servable checkpoint;
- :mod:`~fedrec.simulation.scenarios`: scenario files (``simulations/scenarios/*.toml``);
- :mod:`~fedrec.simulation.faults`: simulated failing and straggling clients (a Flower
  mod that only simulations install).
"""
