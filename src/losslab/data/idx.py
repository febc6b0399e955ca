"""MNIST and Fashion-MNIST from their original gzip IDX files, each checked against its SHA-256 before parsing.

The files are found in a folder given as ``data_dir`` or by the ``LOSSLAB_DATA`` environment variable, laid
out as ``<dir>/mnist/*.gz`` and ``<dir>/fashion-mnist/*.gz``, or directly in ``<dir>``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from losslab.plugins import file_sha256

DATA_ENV = "LOSSLAB_DATA"
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


def find_idx_file(name: str, filename: str, data_dir: Path | None) -> Path:
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


def read_idx(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Parse a gzip IDX file (uint8 data), checking its checksum, magic number and length first."""
    if expected_sha256 is not None:
        actual = file_sha256(path)
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


def load_idx_dataset(name: str, data_dir=None, verify: bool = True) -> dict:
    """MNIST or Fashion-MNIST as [n, 1, 28, 28] images in [0, 1] (standardised later with one scalar)."""
    folder = resolve_data_dir(data_dir)
    checksums = IDX_FILES[name]
    arrays = {}
    for filename, digest in checksums.items():
        path = find_idx_file(name, filename, folder)
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
