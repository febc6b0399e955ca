"""The train layer: the batched trainer of populations and its metrics.

Datasets are the data layer's (``losslab.data``), models the models layer's (``losslab.models``); saving
results is the results store's job (``losslab.experiments.store.save_result``).
"""

from losslab.train.population import (
    Member,
    PopulationResult,
    TrainConfig,
    check_population,
    train_population,
)

__all__ = [
    "Member",
    "PopulationResult",
    "TrainConfig",
    "check_population",
    "train_population",
]
