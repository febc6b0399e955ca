"""The built-in datasets: scikit-learn's bundled tables, MNIST-1D and Gaussian blobs (no files needed), and MNIST and
Fashion-MNIST (IDX files, ``losslab.data.idx``), each a loader and a row of ``BUILTIN_DATASETS``.

Each loader returns a plain dict of arrays (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``class_names``,
``provenance``), as a user's loader may; ``losslab.data.registry`` registers them under their names and
``load_dataset`` checks, splits and standardises them like any other.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from losslab.data.dataset import SPLIT_SEED, TEST_FRACTION
from losslab.data.idx import load_idx_dataset
from losslab.params import Boolean, Interval, Param

# Each loader's options, declared (constraint, default, meaning); ``losslab.data.registry`` registers them
# with the loader, and the loader's keyword defaults are read from these declarations.
#: scikit-learn's bundled tables: a seeded stratified test split.
TABLE_PARAMS = (SPLIT_SEED, TEST_FRACTION)
MNIST1D_SEED = Param("seed", Interval(int, 0), 42, "generator seed; 42 gives the package's reference split")
BLOBS_PARAMS = (
    Param("num_classes", Interval(int, 2), 10, "number of classes (Gaussian clusters)", example=[2, 10, 100]),
    Param("num_features", Interval(int, 1), 20, "features per example"),
    Param("train_per_class", Interval(int, 2), 100, "training examples per class"),
    Param("test_per_class", Interval(int, 1), 50, "test examples per class"),
    Param("cluster_std", Interval(float, 0, closed="neither"), 4.0, "standard deviation of each cluster"),
    Param("seed", Interval(int, 0), 0, "seed of the centres, the examples and the split"),
)
VERIFY = Param("verify", Boolean(), True, "check each IDX file's SHA-256 before parsing it")
_BLOBS = {p.name: p.default for p in BLOBS_PARAMS}


def _sklearn_table(loader_name: str, source: str, seed: int, test_fraction: float) -> dict:
    """One of scikit-learn's bundled tables with a seeded stratified test split."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

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


def load_digits(seed: int = SPLIT_SEED.default, test_fraction: float = TEST_FRACTION.default) -> dict:
    """scikit-learn's 8x8 handwritten digits (1,797 images), with a fixed stratified split."""
    data = _sklearn_table("load_digits", "sklearn.datasets.load_digits (UCI optical digits, 8x8)", seed, test_fraction)
    data["class_names"] = [str(i) for i in range(10)]
    return data


def load_iris(seed: int = SPLIT_SEED.default, test_fraction: float = TEST_FRACTION.default) -> dict:
    """Fisher's iris (150 flowers, 4 measurements, 3 species), scikit-learn's bundled copy."""
    return _sklearn_table("load_iris", "sklearn.datasets.load_iris (UCI iris)", seed, test_fraction)


def load_wine(seed: int = SPLIT_SEED.default, test_fraction: float = TEST_FRACTION.default) -> dict:
    """UCI wine recognition (178 wines, 13 chemical measurements, 3 cultivars)."""
    return _sklearn_table("load_wine", "sklearn.datasets.load_wine (UCI wine)", seed, test_fraction)


def load_breast_cancer(seed: int = SPLIT_SEED.default, test_fraction: float = TEST_FRACTION.default) -> dict:
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


def load_mnist1d(seed: int = MNIST1D_SEED.default) -> dict:
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
    num_classes: int = _BLOBS["num_classes"],
    num_features: int = _BLOBS["num_features"],
    train_per_class: int = _BLOBS["train_per_class"],
    test_per_class: int = _BLOBS["test_per_class"],
    cluster_std: float = _BLOBS["cluster_std"],
    seed: int = _BLOBS["seed"],
) -> dict:
    """A Gaussian mixture with ``num_classes`` classes (sklearn ``make_blobs``), balanced, any K >= 2."""
    from sklearn.datasets import make_blobs

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


def _idx_loader(name: str):
    """The loader of an IDX dataset (MNIST, Fashion-MNIST), read from ``data_dir`` (or $LOSSLAB_DATA)."""

    def load(data_dir=None, verify: bool = VERIFY.default) -> dict:
        return load_idx_dataset(name, data_dir, verify)

    load.__name__ = load.__qualname__ = f"load_{name.replace('-', '_')}"
    return load


#: Every built-in dataset: its name, loader, declared options and one-line summary, registered in this order by
#: ``losslab.data.registry`` as a user's would be. A new built-in dataset is a loader above and a row here.
BUILTIN_DATASETS = (
    ("digits", load_digits, TABLE_PARAMS, "scikit-learn's 8x8 handwritten digits: 1,797 images, 10 classes"),
    ("iris", load_iris, TABLE_PARAMS, "Fisher's iris: 150 flowers, 4 features, 3 species (scikit-learn)"),
    ("wine", load_wine, TABLE_PARAMS, "UCI wine: 178 wines, 13 features, 3 cultivars (scikit-learn)"),
    ("breast_cancer", load_breast_cancer, TABLE_PARAMS, "Wisconsin breast cancer: 569 cases, 30 features, 2 classes"),
    ("mnist1d", load_mnist1d, (MNIST1D_SEED,), "MNIST-1D (Greydanus 2020): 4,000 + 1,000 sequences of 40, 10 classes"),
    ("blobs", load_blobs, BLOBS_PARAMS, "a Gaussian mixture with any number of classes (make_blobs)"),
    (
        "mnist",
        _idx_loader("mnist"),
        (VERIFY,),
        "MNIST from the original IDX files (--data-dir): 60,000 + 10,000 images 28x28, 10 classes",
    ),
    (
        "fashion-mnist",
        _idx_loader("fashion-mnist"),
        (VERIFY,),
        "Fashion-MNIST from the original IDX files (--data-dir): 60,000 + 10,000 images, 10 classes",
    ),
)
