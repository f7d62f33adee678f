"""All run settings in one typed place.

Flower passes settings as a flat mapping with hyphenated keys (``[tool.flwr.app.config]``
in ``pyproject.toml``, overridable with ``flwr run . --run-config``). :func:`from_run_config`
parses that mapping once into frozen dataclasses that validate themselves; everything else
in fedrec takes the dataclasses. A test keeps the defaults here equal to ``pyproject.toml``.

- :mod:`~fedrec.shared.config.settings`: :class:`FedRecConfig`, the sections joined;
- one module per section, with the names of its choices: :mod:`.data`, :mod:`.train`,
  :mod:`.privacy` (record and user level), :mod:`.federation` (rounds, strategies,
  aggregations), :mod:`.text`, :mod:`.cooccurrence`; :mod:`.validate` is how each refuses;
- :mod:`~fedrec.shared.config.parse`: the flat run config in and out, renamed and retired
  keys, the Advanced group.
"""

from fedrec.shared.config.parse import (
    ADVANCED_KEYS,
    DEPRECATED_KEYS,
    RENAMED_KEYS,
    RETIRED_KEYS,
    DeprecatedKeyWarning,
    config_of_checkpoint,
    default_config,
    from_run_config,
    resolve_config,
)
from fedrec.shared.config.settings import (
    ACCOUNTANTS,
    AGGREGATIONS,
    DATASETS,
    FEDERATED_EVALUATION,
    MODELS,
    STRATEGIES,
    TEXT_TOWERS,
    USER_DP_PLACEMENTS,
    CooccurrenceConfig,
    DataConfig,
    FederationConfig,
    FedRecConfig,
    OutputConfig,
    PrivacyConfig,
    TextConfig,
    TrainConfig,
    default_server_learning_rate,
)

__all__ = [
    "ACCOUNTANTS",
    "FEDERATED_EVALUATION",
    "MODELS",
    "TEXT_TOWERS",
    "USER_DP_PLACEMENTS",
    "ADVANCED_KEYS",
    "AGGREGATIONS",
    "DATASETS",
    "STRATEGIES",
    "DEPRECATED_KEYS",
    "RENAMED_KEYS",
    "DeprecatedKeyWarning",
    "RETIRED_KEYS",
    "CooccurrenceConfig",
    "DataConfig",
    "FederationConfig",
    "FedRecConfig",
    "OutputConfig",
    "PrivacyConfig",
    "TextConfig",
    "TrainConfig",
    "config_of_checkpoint",
    "default_config",
    "default_server_learning_rate",
    "from_run_config",
    "resolve_config",
]
