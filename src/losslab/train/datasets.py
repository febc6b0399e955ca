"""Datasets: one registry, each loader returning train/test tensors, class names and provenance.

Built in, with no files needed: ``digits`` (scikit-learn's 8x8 digits), ``mnist1d`` (generated
offline by the mnist1d package) and ``blobs`` (a Gaussian mixture with any number of classes).
``mnist`` and ``fashion-mnist`` read the original gzip IDX files from a folder given as
``data_dir`` or by the ``LOSSLAB_DATA`` environment variable (laid out as ``<dir>/mnist/*.gz`` and
``<dir>/fashion-mnist/*.gz``, or the files directly in ``<dir>``); each file's SHA-256 is checked
before it is parsed. Any dataset can be cut to a subset of classes (``classes=[0, 1]`` makes a
binary problem, relabelled 0 and 1). Inputs are standardised with statistics of the training split only.

    >>> ds = load_dataset("digits", seed=0)
    >>> ds.x_train.shape, ds.num_classes
    (torch.Size([1347, 64]), 10)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "LOSSLAB_DATA"


@dataclass(frozen=True)
class Dataset:
    """Standardised float32 inputs and int64 labels, split into train and test."""

    name: str
    x_train: torch.Tensor  # [n_train, *input_shape]
    y_train: torch.Tensor  # [n_train]
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    provenance: dict = field(default_factory=dict)

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
        )


def _standardise(x_train: np.ndarray, x_test: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale with training statistics only (per feature, or one scalar for images)."""
    axis = 0 if per_feature else None
    mean = x_train.mean(axis=axis)
    std = x_train.std(axis=axis)
    # Constant features (e.g. digit corners) have std 0: leave their scale alone rather than divide by 0.
    std = np.where(std > 1e-8, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def _make(name, x_train, y_train, x_test, y_test, class_names, provenance, per_feature=True) -> Dataset:
    x_train, x_test = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64), per_feature)
    return Dataset(
        name,
        torch.from_numpy(x_train.astype(np.float32)),
        torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        torch.from_numpy(x_test.astype(np.float32)),
        torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        tuple(class_names),
        {**provenance, "standardised": "per feature" if per_feature else "one scalar", "statistics_from": "train"},
    )


# --- built-in datasets -------------------------------------------------------------------------------


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images), with a fixed stratified split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_fraction, stratify=data.target, random_state=seed
    )
    return _make(
        "digits",
        x_train,
        y_train,
        x_test,
        y_test,
        [str(i) for i in range(10)],
        {
            "source": "sklearn.datasets.load_digits (UCI optical digits, 8x8)",
            "split_seed": seed,
            "test_fraction": test_fraction,
        },
    )


@lru_cache(maxsize=2)
def _mnist1d_arrays(seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)  # deterministic given args.seed; no download
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_mnist1d(seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test sequences of length 40, 10 classes.

    Generated offline by ``mnist1d.data.make_dataset(get_dataset_args())``; ``seed`` 42 is the
    package's default and gives its reference split.
    """
    x_train, y_train, x_test, y_test = _mnist1d_arrays(seed)
    return _make(
        "mnist1d",
        x_train,
        y_train,
        x_test,
        y_test,
        [str(i) for i in range(10)],
        {"source": "mnist1d.data.make_dataset(get_dataset_args())", "generator_seed": seed},
    )


def load_blobs(
    num_classes: int = 10,
    num_features: int = 20,
    train_per_class: int = 100,
    test_per_class: int = 50,
    cluster_std: float = 4.0,
    seed: int = 0,
) -> Dataset:
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
    return _make(
        "blobs",
        x[train_idx],
        y[train_idx],
        x[test_idx],
        y[test_idx],
        [str(i) for i in range(num_classes)],
        {
            "source": "sklearn.datasets.make_blobs",
            "seed": seed,
            "num_features": num_features,
            "cluster_std": cluster_std,
            "train_per_class": train_per_class,
        },
    )


# --- MNIST and Fashion-MNIST from IDX files -------------------------------------------------------

IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
IDX_SOURCES = {
    "mnist": "the MNIST release by LeCun, Cortes and Burges (the files torchvision's MNIST downloads)",
    "fashion-mnist": "github.com/zalandoresearch/fashion-mnist, folder data/fashion",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    return Path(chosen) if chosen else None


def _find_idx_file(name: str, filename: str, data_dir: Path | None) -> Path:
    if data_dir is None:
        raise FileNotFoundError(
            f"dataset {name!r} needs its IDX files: pass data_dir (CLI: --data-dir) or set {DATA_ENV} to a folder "
            f"holding {name}/{filename} and the other files ({', '.join(IDX_FILES[name])}), from {IDX_SOURCES[name]}"
        )
    for candidate in (data_dir / name / filename, data_dir / filename):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"dataset {name!r}: missing file {filename} in {data_dir} (looked in {data_dir / name} and {data_dir}); "
        f"get the original gzip IDX files from {IDX_SOURCES[name]}"
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Parse a gzip IDX file (uint8 data), checking its checksum, magic number and length first."""
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise ValueError(
                f"{path}: SHA-256 is {actual}, expected {expected_sha256}; the file is corrupt or not the "
                "original release: download it again"
            )
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc}); download it again") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: truncated or padded IDX file: header says {dims} = {expected} bytes of data, "
            f"found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def check_available(name: str, data_dir=None) -> None:
    """Raise FileNotFoundError now if ``name`` needs files that are missing (a cheap check before training)."""
    if name in IDX_FILES:
        folder = resolve_data_dir(data_dir)
        for filename in IDX_FILES[name]:
            _find_idx_file(name, filename, folder)


def load_idx_dataset(name: str, data_dir=None, verify: bool = True) -> Dataset:
    """MNIST or Fashion-MNIST as [n, 1, 28, 28] images, standardised with one scalar from the training set."""
    folder = resolve_data_dir(data_dir)
    checksums = IDX_FILES[name]
    arrays = {}
    for filename, digest in checksums.items():
        path = _find_idx_file(name, filename, folder)
        arrays[filename] = read_idx(path, digest if verify else None)
    x_train = arrays["train-images-idx3-ubyte.gz"][:, None].astype(np.float64) / 255.0
    x_test = arrays["t10k-images-idx3-ubyte.gz"][:, None].astype(np.float64) / 255.0
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return _make(
        name,
        x_train,
        arrays["train-labels-idx1-ubyte.gz"],
        x_test,
        arrays["t10k-labels-idx1-ubyte.gz"],
        classes,
        {"source": IDX_SOURCES[name], "folder": str(folder), "sha256_verified": verify},
        per_feature=False,
    )


# --- the registry ---------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": lambda seed=0, data_dir=None, **kw: load_digits(seed=seed, **kw),
    "mnist1d": lambda seed=42, data_dir=None, **kw: load_mnist1d(seed=seed, **kw),
    "blobs": lambda seed=0, data_dir=None, **kw: load_blobs(seed=seed, **kw),
    "mnist": lambda seed=0, data_dir=None, **kw: load_idx_dataset("mnist", data_dir, **kw),
    "fashion-mnist": lambda seed=0, data_dir=None, **kw: load_idx_dataset("fashion-mnist", data_dir, **kw),
}

#: The options each dataset accepts (beyond ``classes`` and ``data_dir``), for validating specs early.
DATASET_OPTIONS: dict[str, set[str]] = {
    "digits": {"seed", "test_fraction"},
    "mnist1d": {"seed"},
    "blobs": {"seed", "num_classes", "num_features", "train_per_class", "test_per_class", "cluster_std"},
    "mnist": {"verify"},
    "fashion-mnist": {"verify"},
}


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
    return replace(
        dataset,
        name=f"{dataset.name}[{','.join(map(str, classes))}]",
        x_train=dataset.x_train[keep_train],
        y_train=lookup[dataset.y_train[keep_train]],
        x_test=dataset.x_test[keep_test],
        y_test=lookup[dataset.y_test[keep_test]],
        class_names=tuple(dataset.class_names[c] for c in classes),
        provenance={**dataset.provenance, "classes": list(classes)},
    )


def load_dataset(name: str, *, classes: list[int] | None = None, data_dir=None, **options) -> Dataset:
    """Load a registered dataset by name; ``classes`` keeps a subset; ``options`` go to the loader.

    ``seed`` (an option of digits, mnist1d and blobs) fixes the split or the generated data.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    try:
        dataset = DATASETS[name](data_dir=data_dir, **options)
    except TypeError as exc:
        raise ValueError(f"dataset {name!r}: bad option ({exc})") from None
    return subset_classes(dataset, list(classes)) if classes is not None else dataset
