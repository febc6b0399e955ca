"""The built-in datasets that need no files: scikit-learn's bundled tables, MNIST-1D and Gaussian blobs.

Each loader returns a plain dict of arrays (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``class_names``,
``provenance``), as a user's loader may; ``losslab.data.registry`` registers them under their names and
``load_dataset`` checks, splits and standardises them like any other.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _sklearn_table(loader_name: str, source: str, seed: int = 0, test_fraction: float = 0.25) -> dict:
    """One of scikit-learn's bundled tables with a seeded stratified test split."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    data = getattr(sklearn.datasets, loader_name)()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_fraction, stratify=data.target, random_state=seed
    )
    names = getattr(data, "target_names", None)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": [str(n) for n in names] if names is not None else None,
        "provenance": {"source": source, "split_seed": seed, "test_fraction": test_fraction},
    }


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> dict:
    """scikit-learn's 8x8 handwritten digits (1,797 images), with a fixed stratified split."""
    data = _sklearn_table("load_digits", "sklearn.datasets.load_digits (UCI optical digits, 8x8)", seed, test_fraction)
    data["class_names"] = [str(i) for i in range(10)]
    return data


def load_iris(seed: int = 0, test_fraction: float = 0.25) -> dict:
    """Fisher's iris (150 flowers, 4 measurements, 3 species), scikit-learn's bundled copy."""
    return _sklearn_table("load_iris", "sklearn.datasets.load_iris (UCI iris)", seed, test_fraction)


def load_wine(seed: int = 0, test_fraction: float = 0.25) -> dict:
    """UCI wine recognition (178 wines, 13 chemical measurements, 3 cultivars)."""
    return _sklearn_table("load_wine", "sklearn.datasets.load_wine (UCI wine)", seed, test_fraction)


def load_breast_cancer(seed: int = 0, test_fraction: float = 0.25) -> dict:
    """Wisconsin diagnostic breast cancer (569 cases, 30 features, malignant/benign)."""
    return _sklearn_table(
        "load_breast_cancer", "sklearn.datasets.load_breast_cancer (UCI breast cancer Wisconsin)", seed, test_fraction
    )


@lru_cache(maxsize=2)
def _mnist1d_arrays(seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)  # deterministic given args.seed; no download
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_mnist1d(seed: int = 42) -> dict:
    """MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test sequences of length 40, 10 classes.

    Generated offline by ``mnist1d.data.make_dataset(get_dataset_args())``; ``seed`` 42 is the
    package's default and gives its reference split.
    """
    x_train, y_train, x_test, y_test = _mnist1d_arrays(seed)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": [str(i) for i in range(10)],
        "provenance": {"source": "mnist1d.data.make_dataset(get_dataset_args())", "generator_seed": seed},
    }


def load_blobs(
    num_classes: int = 10,
    num_features: int = 20,
    train_per_class: int = 100,
    test_per_class: int = 50,
    cluster_std: float = 4.0,
    seed: int = 0,
) -> dict:
    """A Gaussian mixture with ``num_classes`` classes (sklearn ``make_blobs``), balanced, any K >= 2."""
    from sklearn.datasets import make_blobs

    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for blobs, got {num_classes}")
    per_class = train_per_class + test_per_class
    x, y = make_blobs(
        n_samples=[per_class] * num_classes,
        n_features=num_features,
        cluster_std=cluster_std,
        center_box=(-10, 10),
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in range(num_classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx.extend(idx[:train_per_class])
        test_idx.extend(idx[train_per_class:])
    return {
        "x_train": x[train_idx],
        "y_train": y[train_idx],
        "x_test": x[test_idx],
        "y_test": y[test_idx],
        "class_names": [str(i) for i in range(num_classes)],
        "provenance": {
            "source": "sklearn.datasets.make_blobs",
            "seed": seed,
            "num_features": num_features,
            "cluster_std": cluster_std,
            "train_per_class": train_per_class,
        },
    }
