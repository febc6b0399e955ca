"""Datasets: one registry, each loader returning train/test arrays, class names and provenance.

Built in, with no files needed: ``digits`` (scikit-learn's 8x8 digits), ``iris``, ``wine`` and
``breast_cancer`` (scikit-learn's bundled tables), ``mnist1d`` (generated offline by the mnist1d
package) and ``blobs`` (a Gaussian mixture with any number of classes). ``mnist`` and ``fashion-mnist``
read the original gzip IDX files from a folder given as ``data_dir`` or by the ``LOSSLAB_DATA``
environment variable (laid out as ``<dir>/mnist/*.gz`` and ``<dir>/fashion-mnist/*.gz``, or the files
directly in ``<dir>``); each file's SHA-256 is checked before it is parsed. A user's data: a loader
registered with ``register_dataset``, or a file named ``file:path/to/data.npz`` (``.csv``, ``.parquet``;
see ``dataset_files``).

``load_dataset`` runs every dataset through the same steps: ``check_dataset`` (shapes, dtypes, NaN/inf,
labels, examples per class), a stratified validation split carved from the training split with a fixed
seed (``validation=0.1`` by default), then standardisation with statistics of the remaining training
examples only (per feature for [n, d] inputs, one scalar for images). Any dataset can be cut to a subset
of classes (``classes=[0, 1]`` makes a binary problem, relabelled 0 and 1).

    >>> ds = load_dataset("digits", seed=0)
    >>> ds.x_train.shape, ds.x_val.shape, ds.num_classes
    (torch.Size([1011, 64]), torch.Size([336, 64]), 10)
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from losslab.plugins import accepted_keywords, check_name, file_sha256, origin_of, where_it_failed
from losslab.train import dataset_files
from losslab.train.dataset_checks import check_dataset, stratified_split

DATA_ENV = "LOSSLAB_DATA"
#: The validation split's fixed seed (recorded in each dataset's provenance).
VALIDATION_SEED = 20_230_517
#: Options of ``load_dataset`` itself, accepted for every dataset.
COMMON_OPTIONS = frozenset({"validation", "standardise"})


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


def _check_validation(validation) -> float:
    if isinstance(validation, bool) or not isinstance(validation, (int, float)) or not 0 <= validation < 0.5:
        raise ValueError(
            f"validation must be a fraction in [0, 0.5) of the training split, got {validation!r}; "
            "0 means no validation split"
        )
    return float(validation)


def _build(name: str, arrays: dict, validation: float, standardise: bool = True) -> Dataset:
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


# --- built-in datasets -------------------------------------------------------------------------------


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


sha256 = file_sha256  # the checksum of a data file (the IDX files are checked against theirs)


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
    """Raise now if ``name`` needs files that are missing (a cheap check before training)."""
    if dataset_files.is_file_name(name):
        dataset_files.check_file(name)
    elif name in IDX_FILES:
        folder = resolve_data_dir(data_dir)
        for filename in IDX_FILES[name]:
            _find_idx_file(name, filename, folder)


def load_idx_dataset(name: str, data_dir=None, verify: bool = True) -> dict:
    """MNIST or Fashion-MNIST as [n, 1, 28, 28] images in [0, 1] (standardised later with one scalar)."""
    folder = resolve_data_dir(data_dir)
    checksums = IDX_FILES[name]
    arrays = {}
    for filename, digest in checksums.items():
        path = _find_idx_file(name, filename, folder)
        arrays[filename] = read_idx(path, digest if verify else None)
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return {
        "x_train": arrays["train-images-idx3-ubyte.gz"][:, None].astype(np.float64) / 255.0,
        "y_train": arrays["train-labels-idx1-ubyte.gz"],
        "x_test": arrays["t10k-images-idx3-ubyte.gz"][:, None].astype(np.float64) / 255.0,
        "y_test": arrays["t10k-labels-idx1-ubyte.gz"],
        "class_names": classes,
        "provenance": {"source": IDX_SOURCES[name], "folder": str(folder), "sha256_verified": verify},
    }


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, the options it accepts (None: any) and a one-line summary."""

    name: str
    loader: Callable[..., Dataset | Mapping]
    options: frozenset[str] | None
    summary: str
    module: str
    takes_data_dir: bool = False

    @property
    def origin(self) -> str:
        return origin_of(self.module)


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, loader, options=None, summary: str = "", *, replace: bool = False) -> DatasetEntry:
    """Add a dataset to ``DATASETS`` (the one registry; the built-ins are registered the same way).

    ``loader(**options)`` returns a ``Dataset`` or a mapping of arrays ``x_train``, ``y_train``, ``x_test``,
    ``y_test`` and optionally ``class_names`` (numpy arrays, tensors or lists; features [n, *input_shape],
    labels integer classes 0..K-1). ``load_dataset`` checks it (``check_dataset``), carves the validation
    split and standardises it. ``options`` names the keyword options the loader accepts, for validating
    specs early (None: read them from the loader's signature; a loader taking ``**kwargs`` accepts any).
    A loader with a ``data_dir`` parameter receives ``load_dataset``'s ``data_dir``.

        >>> def my_data(seed=0):
        ...     return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
        >>> register_dataset("my_data", my_data, summary="my measurements, 3 classes")
    """
    check_name("dataset", name)
    if not callable(loader):
        raise ValueError(
            f"dataset {name!r}: loader must be a function returning a Dataset or a mapping of arrays, got "
            f"{type(loader).__name__}"
        )
    accepted = accepted_keywords(loader)
    takes_data_dir = accepted is None or "data_dir" in accepted
    if options is None:
        options = None if accepted is None else accepted - {"data_dir"}
    else:
        if isinstance(options, str) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"dataset {name!r}: options must be a list of option names, got {options!r}")
        options = set(options)
        if accepted is not None and not options <= accepted:
            raise ValueError(
                f"dataset {name!r}: options {sorted(options - accepted)} are not parameters of the loader "
                f"(it accepts {sorted(accepted) or 'none'}); list only the loader's keyword parameters"
            )
    reserved = sorted((options or set()) & {"classes", "validation"})
    if reserved:
        raise ValueError(
            f"dataset {name!r}: {reserved} are options of load_dataset itself; rename the loader's parameter"
        )
    if not isinstance(summary, str):
        raise ValueError(f"dataset {name!r}: summary must be a string, got {type(summary).__name__}")
    if name in DATASETS and not replace:
        raise ValueError(
            f"dataset {name!r} is already registered ({DATASETS[name].origin}); choose another name, or pass "
            "replace=True to replace it"
        )
    entry = DatasetEntry(
        name,
        loader,
        None if options is None else frozenset(options),
        summary,
        getattr(loader, "__module__", None) or "?",
        takes_data_dir,
    )
    DATASETS[name] = entry
    return entry


register_dataset("digits", load_digits, summary="scikit-learn's 8x8 handwritten digits: 1,797 images, 10 classes")
register_dataset("iris", load_iris, summary="Fisher's iris: 150 flowers, 4 features, 3 species (scikit-learn)")
register_dataset("wine", load_wine, summary="UCI wine: 178 wines, 13 features, 3 cultivars (scikit-learn)")
register_dataset(
    "breast_cancer", load_breast_cancer, summary="Wisconsin breast cancer: 569 cases, 30 features, 2 classes"
)
register_dataset(
    "mnist1d", load_mnist1d, summary="MNIST-1D (Greydanus 2020): 4,000 + 1,000 sequences of 40, 10 classes"
)
register_dataset("blobs", load_blobs, summary="a Gaussian mixture with any number of classes (make_blobs)")
register_dataset(
    "mnist",
    lambda data_dir=None, verify=True: load_idx_dataset("mnist", data_dir, verify),
    summary="MNIST from the original IDX files (--data-dir): 60,000 + 10,000 images 28x28, 10 classes",
)
register_dataset(
    "fashion-mnist",
    lambda data_dir=None, verify=True: load_idx_dataset("fashion-mnist", data_dir, verify),
    summary="Fashion-MNIST from the original IDX files (--data-dir): 60,000 + 10,000 images, 10 classes",
)


def resolve_dataset_name(name, base_dir=None) -> str:
    """Check a dataset name, a registered one or ``file:PATH``; return it with a file path made absolute.

    ``base_dir`` is the folder a relative ``file:`` path is relative to (a spec's folder; default: here).
    """
    if dataset_files.is_file_name(name):
        return dataset_files.PREFIX + str(dataset_files.check_file(name, base_dir))
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}, or file:path/to/data.npz (.csv, .parquet)"
        )
    return name


def dataset_option_names(name: str) -> set[str] | None:
    """The options ``load_dataset(name, ...)`` accepts besides ``classes`` and ``data_dir`` (None: any)."""
    if dataset_files.is_file_name(name):
        return set(dataset_files.file_options(name) | COMMON_OPTIONS)
    options = DATASETS[resolve_dataset_name(name)].options
    return None if options is None else set(options | COMMON_OPTIONS)


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


def load_dataset(
    name: str,
    *,
    classes: list[int] | None = None,
    data_dir=None,
    validation: float = 0.1,
    standardise: bool = True,
    **options,
) -> Dataset:
    """Load a dataset by name (registered, or ``file:path/to/data.npz``/``.csv``/``.parquet``), checked.

    ``classes`` keeps a subset; ``validation`` is the fraction of the training split held out as a
    stratified validation split (fixed seed ``VALIDATION_SEED``; 0 for none; at least min(1000, n / 4)
    examples otherwise), carved before standardisation; ``standardise=False`` keeps the inputs as the
    loader gives them; ``options`` go to the loader (``seed`` fixes the split or the generated data of
    digits, iris, wine, breast_cancer, mnist1d and blobs).
    """
    validation = _check_validation(validation)
    if not isinstance(standardise, bool):
        raise ValueError(f"standardise must be true or false, got {standardise!r}")
    allowed = dataset_option_names(resolve_dataset_name(name))
    unknown = sorted(set(options) - allowed) if allowed is not None else []
    if unknown:
        valid = ", ".join(sorted(allowed - COMMON_OPTIONS)) or "none"
        if dataset_files.is_file_name(name) and not allowed - COMMON_OPTIONS:
            valid += " (a .npz file carries its own split)"
        raise ValueError(f"dataset {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    if dataset_files.is_file_name(name):
        raw = dataset_files.load_file(name, **options)
        label = dataset_files.PREFIX + Path(raw["source"]).name
        arrays = check_dataset(
            raw,
            name=label,
            source=raw["source"],
            feature_names=raw.get("feature_names"),
            label_name=raw.get("label_name", "labels"),
        )
    else:
        entry = DATASETS[name]
        kwargs = {**options, **({"data_dir": data_dir} if entry.takes_data_dir else {})}
        try:
            raw = entry.loader(**kwargs)
        except (ValueError, OSError):
            raise  # already say what is wrong: bad option values, missing or corrupt files
        except Exception as exc:  # noqa: BLE001 - a user's loader failing: one line with its file and line
            raise ValueError(
                f"dataset {name!r}: the loader raised {type(exc).__name__}: {exc} ({where_it_failed(exc, None)}); "
                "fix the loader or its options"
            ) from exc
        label = name
        arrays = check_dataset(raw, name=name)
    dataset = _build(label, arrays, validation, standardise)
    return subset_classes(dataset, list(classes)) if classes is not None else dataset
