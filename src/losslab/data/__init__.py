"""The data layer: one registry of datasets, the built-in ones, file datasets, and the checks every dataset passes.

Built in (each a row of ``builtin.BUILTIN_DATASETS``; ``losslab list datasets`` lists them all), among them,
with no files needed: ``digits`` (scikit-learn's 8x8 digits), scikit-learn's bundled tables, ``mnist1d``
(generated offline by the mnist1d package) and ``blobs`` (a Gaussian mixture with any number of classes). ``mnist`` and ``fashion-mnist``
read the original gzip IDX files from a folder given as ``data_dir`` or by the ``LOSSLAB_DATA``
environment variable (``idx``); each file's SHA-256 is checked before it is parsed. A user's data: a loader
registered with ``register_dataset``, or a file named ``file:path/to/data.npz`` (``.csv``, ``.parquet``;
see ``files``).

Modules, one job each: ``dataset`` (the ``Dataset`` type, the validation split, standardisation, class
subsets), ``checks`` (``check_dataset`` and the seeded stratified split), ``builtin`` and ``idx`` (the
built-in loaders), ``files`` (``file:`` datasets), ``registry`` (``DATASETS``, ``register_dataset``) and
``load`` (``load_dataset``).

    >>> ds = load_dataset("digits", seed=0)
    >>> ds.x_train.shape, ds.x_val.shape, ds.num_classes
    (torch.Size([1011, 64]), torch.Size([336, 64]), 10)

Nothing here imports from the trainer (``losslab.train``).
"""

from losslab.data.checks import check_dataset, stratified_split
from losslab.data.dataset import VALIDATION_SEED, Dataset, subset_classes, validation_size
from losslab.data.idx import DATA_ENV, read_idx
from losslab.data.load import load_dataset
from losslab.data.registry import (
    DATASETS,
    DatasetEntry,
    check_available,
    dataset_option_names,
    dataset_params,
    register_dataset,
    resolve_dataset_name,
)

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "Dataset",
    "DatasetEntry",
    "VALIDATION_SEED",
    "check_available",
    "check_dataset",
    "dataset_option_names",
    "dataset_params",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "resolve_dataset_name",
    "stratified_split",
    "subset_classes",
    "validation_size",
]
