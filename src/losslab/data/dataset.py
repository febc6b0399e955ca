"""The ``Dataset`` every loader ends as: standardised float32 inputs and int64 labels, split three ways.

``build_dataset`` turns checked arrays (``losslab.data.checks.check_dataset``) into a ``Dataset``: a stratified
validation split carved from the training split with a fixed seed, then standardisation with statistics of
the remaining training examples only (per feature for [n, d] inputs, one scalar for images).
``subset_classes`` cuts any dataset to some of its classes, relabelled 0..k-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from losslab.data.checks import stratified_split
from losslab.params import Boolean, Interval, Param

#: The validation split's fixed seed (recorded in each dataset's provenance).
VALIDATION_SEED = 20_230_517

# --- options, declared once: those of every dataset (load_dataset's own), and the seeded test split's ---------
VALIDATION = Param(
    "validation",
    Interval(float, 0, 0.5, "left", text="a fraction in [0, 0.5) of the training split"),
    0.1,
    "share of the training split held out (stratified, fixed seed) to choose learning rates on",
    example=0.2,
    fix="0 means no validation split",
)
STANDARDISE = Param(
    "standardise", Boolean(), True, "centre and scale the inputs with the training split's statistics", example=False
)
#: Options ``load_dataset`` takes for every dataset, by name.
COMMON_PARAMS = {p.name: p for p in (VALIDATION, STANDARDISE)}
SPLIT_SEED = Param("seed", Interval(int, 0), 0, "seed of the stratified train/test split", example=1)
TEST_FRACTION = Param(
    "test_fraction", Interval(float, 0, 1, "neither"), 0.25, "share of each class held out as the test set"
)


@dataclass(frozen=True)
class Dataset:
    """Standardised float32 inputs and int64 labels, split into train, validation and test.

    ``x_val``/``y_val`` have shape [0, *input_shape] and [0] when there is no validation split.
    """

    name: str
    x_train: torch.Tensor  # [n_train, *input_shape]
    y_train: torch.Tensor  # [n_train]
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    provenance: dict = field(default_factory=dict)
    x_val: torch.Tensor | None = None  # [n_val, *input_shape]; empty when there is no validation split
    y_val: torch.Tensor | None = None

    def __post_init__(self):
        if self.x_val is None:
            object.__setattr__(self, "x_val", self.x_train.new_empty((0, *self.x_train.shape[1:])))
        if self.y_val is None:
            object.__setattr__(self, "y_val", self.y_train.new_empty((0,)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        return int(np.prod(self.input_shape))

    def to(self, device) -> Dataset:
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
        )


def _standardise(x_train: np.ndarray, others: list[np.ndarray], per_feature: bool):
    """Centre and scale with training statistics only (per feature, or one scalar for images)."""
    axis = 0 if per_feature else None
    mean = x_train.mean(axis=axis)
    std = x_train.std(axis=axis)
    # Constant features (e.g. digit corners) have std 0: leave their scale alone rather than divide by 0.
    std = np.where(std > 1e-8, std, 1.0)
    return (x_train - mean) / std, [(x - mean) / std for x in others]


def validation_size(fraction: float, n_train: int) -> int:
    """Examples in the validation split: 0 if ``fraction`` is 0, else max(round(f n), min(1000, n // 4))."""
    if fraction == 0:
        return 0
    return max(round(fraction * n_train), min(1000, n_train // 4))


def build_dataset(name: str, arrays: dict, validation: float, standardise: bool = True) -> Dataset:
    """Carve the validation split, standardise with the remaining training statistics, make tensors."""
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    provenance = dict(arrays["provenance"])
    if "x_val" in arrays:  # the loader gave its own validation split
        x_val, y_val = arrays["x_val"], arrays["y_val"]
        provenance["validation"] = "given by the loader"
    else:
        n_val = validation_size(validation, len(y_train))
        kept, taken = stratified_split(y_train, n_val, VALIDATION_SEED)
        x_val, y_val = x_train[taken], y_train[taken]
        x_train, y_train = x_train[kept], y_train[kept]
        provenance.update({"validation": validation, "validation_seed": VALIDATION_SEED, "n_val": int(n_val)})
    per_feature = x_train.ndim == 2  # tables: per feature; images and sequences of channels: one scalar
    if standardise:
        x_train, (x_val, x_test) = _standardise(x_train, [x_val, arrays["x_test"]], per_feature)
    else:  # as the loader gives them (e.g. to reproduce a reference that trains on raw inputs)
        x_test = arrays["x_test"]

    def floats(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def ints(y):
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))

    return Dataset(
        name,
        floats(x_train),
        ints(y_train),
        floats(x_test),
        ints(arrays["y_test"]),
        tuple(arrays["class_names"]),
        {
            **provenance,
            **(
                {
                    "standardised": "per feature" if per_feature else "one scalar",
                    "statistics_from": "train (after the validation split)",
                }
                if standardise
                else {"standardised": "no"}
            ),
        },
        floats(x_val),
        ints(y_val),
    )


def subset_classes(dataset: Dataset, classes: list[int]) -> Dataset:
    """Keep only ``classes`` and relabel them 0..len(classes)-1 (two classes make a binary problem)."""
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must list at least 2 distinct class indices, got {classes}")
    bad = [c for c in classes if not 0 <= c < dataset.num_classes]
    if bad:
        raise ValueError(
            f"classes {bad} are not in dataset {dataset.name!r}, which has classes 0..{dataset.num_classes - 1}"
        )
    lookup = torch.full((dataset.num_classes,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    keep_train, keep_test = lookup[dataset.y_train] >= 0, lookup[dataset.y_test] >= 0
    keep_val = lookup[dataset.y_val] >= 0
    return replace(
        dataset,
        name=f"{dataset.name}[{','.join(map(str, classes))}]",
        x_train=dataset.x_train[keep_train],
        y_train=lookup[dataset.y_train[keep_train]],
        x_test=dataset.x_test[keep_test],
        y_test=lookup[dataset.y_test[keep_test]],
        x_val=dataset.x_val[keep_val],
        y_val=lookup[dataset.y_val[keep_val]],
        class_names=tuple(dataset.class_names[c] for c in classes),
        provenance={**dataset.provenance, "classes": list(classes)},
    )
