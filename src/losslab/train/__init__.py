"""The train layer: datasets, population models, the batched trainer and its metrics.

Saving results is the results store's job: ``losslab.experiments.store.save_result``.
"""

from losslab.train.datasets import DATASETS, Dataset, load_dataset, subset_classes
from losslab.train.models import MODELS, build_model
from losslab.train.population import (
    Member,
    PopulationResult,
    TrainConfig,
    check_population,
    train_population,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "MODELS",
    "Member",
    "PopulationResult",
    "TrainConfig",
    "build_model",
    "check_population",
    "load_dataset",
    "subset_classes",
    "train_population",
]
