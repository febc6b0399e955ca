"""Datasets from files, no code needed: ``file:path/to/data.npz``, ``.csv`` or ``.parquet``.

- ``.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (optional ``class_names``), as written by
  ``numpy.savez(path, x_train=..., ...)``.
- ``.csv`` / ``.parquet``: one row per example, a label column (option ``label``, default ``"label"``)
  and every other column a numeric feature. A split column (option ``split``, default ``"split"``,
  values ``train`` / ``test``) fixes the split; without one, a seeded stratified test split takes
  ``test_fraction`` (default 0.25) of each class (option ``seed``, default 0). Text labels become classes
  in sorted order (their names are kept); numeric labels must be 0..K-1.

Errors name the file, the column and the fix, in one line. The file's SHA-256 goes into the provenance.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from losslab.data.checks import stratified_split
from losslab.data.dataset import SPLIT_SEED, TEST_FRACTION
from losslab.params import Param, Text
from losslab.plugins import file_sha256

PREFIX = "file:"
SUFFIXES = (".npz", ".csv", ".parquet")
_COLUMN = Text("a column name (a string)")
LABEL = Param("label", _COLUMN, "label", "the label column", example="species")
SPLIT = Param(
    "split", _COLUMN, "split", "the column of 'train'/'test' that fixes the split (used where the column exists)"
)
#: Options of table files (CSV, Parquet), declared; .npz files carry their own split and take none.
TABLE_PARAMS = (LABEL, SPLIT, TEST_FRACTION, SPLIT_SEED)
TABLE_OPTIONS = frozenset(p.name for p in TABLE_PARAMS)


def is_file_name(name) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def file_path(name: str, base_dir=None) -> Path:
    """The path of ``file:PATH``: absolute, or relative to ``base_dir`` (a spec's folder; default: here)."""
    raw = name[len(PREFIX) :]
    if not raw:
        raise ValueError(f"dataset {name!r} names no file; write file:path/to/data.npz (or .csv, .parquet)")
    path = Path(raw).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def check_file(name: str, base_dir=None) -> Path:
    """Resolve ``file:PATH`` and check that it is an existing file of a known kind; return its absolute path."""
    path = file_path(name, base_dir)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"dataset {name!r}: {path.name} is not a .npz, .csv or .parquet file; save the data in one of those"
        )
    if not path.is_file():
        where = (
            f" (relative to {base_dir})" if base_dir is not None and not Path(name[len(PREFIX) :]).is_absolute() else ""
        )
        if path.is_symlink() and not path.exists():
            raise ValueError(
                f"dataset {name!r}: {path} is a link to {os.readlink(path)}, which does not exist; check the path"
            )
        if os.path.lexists(path):  # there, but not a regular file: a folder, a device, a pipe (reading it could hang)
            kind = _kind_of(path)
            link = f"a link to {os.path.realpath(path)}, " if path.is_symlink() else ""
            raise ValueError(f"dataset {name!r}: {path} is {link}{kind}, not a data file; give a regular file")
        raise ValueError(f"dataset {name!r}: no file {path}{where}; check the path")
    return path.resolve()


def _kind_of(path: Path) -> str:
    """What a path that is not a regular file is, in words."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def file_options(name: str) -> frozenset[str]:
    return frozenset() if file_path(name).suffix.lower() == ".npz" else TABLE_OPTIONS


def _load_npz(path: Path) -> dict:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic.startswith(b"PK"):  # a zip archive; numpy would call anything else pickled data
        raise ValueError(f"{path}: not a .npz file (not a zip archive); write it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(
                f"{path}: holds Python objects (pickled arrays), which losslab does not load; save numeric arrays "
                "(and class_names as a string array)"
            ) from None
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc}); write it with numpy.savez") from None
    unknown = sorted(set(arrays) - {"x_train", "y_train", "x_test", "y_test", "class_names"})
    if unknown:
        raise ValueError(
            f"{path}: unexpected array(s) {unknown}; a .npz dataset holds x_train, y_train, x_test, y_test and "
            "optionally class_names"
        )
    return {**arrays, "source": str(path)}


def _read_table(path: Path):
    import pandas as pd

    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; one line naming the file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: cannot read it as {path.suffix.lower()[1:]} ({first})") from None


def _line(frame, i: int, path: Path) -> str:
    # CSV: line 1 is the header, so example i is on line i + 2; Parquet has rows, not lines.
    return f"line {i + 2}" if path.suffix.lower() == ".csv" else f"row {i}"


def _load_table(path: Path, label: str, split: str | None, test_fraction, seed) -> dict:
    import pandas as pd

    frame = _read_table(path)
    if len(frame) == 0:
        header = f"only a header ({', '.join(map(str, frame.columns))})" if len(frame.columns) else "no columns"
        raise ValueError(f"{path}: no rows, {header}; a dataset needs examples, one per row")
    if label not in frame.columns:
        raise ValueError(
            f"{path}: no label column {label!r}; columns are: {', '.join(map(str, frame.columns))}; name the label "
            'column with the option label (spec: dataset_options = { label = "..." })'
        )
    split_given, split = split is not None, split or SPLIT.default
    has_split = split in frame.columns
    if split_given and not has_split:
        raise ValueError(
            f"{path}: no split column {split!r}; columns are: {', '.join(map(str, frame.columns))}; drop the option "
            "split to get a seeded stratified split"
        )
    if has_split and (test_fraction is not None or seed is not None):
        raise ValueError(
            f"{path}: the split column {split!r} fixes the test split, so test_fraction and seed do not apply; "
            "drop those options, or drop the column for a seeded split"
        )
    test_fraction = TEST_FRACTION.default if test_fraction is None else test_fraction
    seed = SPLIT_SEED.default if seed is None else seed
    features = [c for c in frame.columns if c not in (label, split if has_split else None)]
    if not features:
        raise ValueError(f"{path}: no feature columns besides {label!r}; add at least one numeric column")
    for column in features:
        values = frame[column]
        if values.dtype == bool:
            continue
        if not pd.api.types.is_numeric_dtype(values):
            sample = values.dropna().astype(str).unique()[:3]
            raise ValueError(
                f"{path}: column {column!r} is not numeric (values such as {', '.join(map(repr, sample))}); encode it "
                "as numbers or drop the column"
            )
        missing = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{path}: column {column!r} has {int(missing.sum())} empty, NaN or infinite value(s) (first on "
                f"{_line(frame, first, path)}); fill them in or drop those rows"
            )
    y_raw = frame[label]
    if y_raw.isna().any():
        first = int(np.flatnonzero(y_raw.isna().to_numpy())[0])
        raise ValueError(
            f"{path}: label column {label!r} has {int(y_raw.isna().sum())} empty value(s) (first on "
            f"{_line(frame, first, path)}); fill them in or drop those rows"
        )
    if pd.api.types.is_numeric_dtype(y_raw) and not pd.api.types.is_bool_dtype(y_raw):
        y = y_raw.to_numpy()
        class_names = None
    else:  # text labels: classes in sorted order, their names kept
        names, y = np.unique(y_raw.astype(str).to_numpy(), return_inverse=True)
        class_names = tuple(names.tolist())
    x = frame[features].to_numpy(dtype=np.float64)
    provenance = {"label_column": label, "features": [str(c) for c in features]}
    if has_split:
        where = frame[split].astype(str).str.strip().str.lower()
        bad = sorted(set(where) - {"train", "test"})
        if bad:
            raise ValueError(
                f"{path}: split column {split!r} has value(s) {bad[:5]}; use 'train' or 'test' in every row"
            )
        train, test = np.flatnonzero(where == "train"), np.flatnonzero(where == "test")
        if len(train) == 0 or len(test) == 0:
            raise ValueError(
                f"{path}: split column {split!r} has no '{'train' if len(train) == 0 else 'test'}' rows; mark some "
                "rows train and some test, or drop the column for a seeded split"
            )
        provenance["split"] = f"column {split!r}"
    else:
        TEST_FRACTION.check(test_fraction)
        SPLIT_SEED.check(seed)
        codes = np.unique(y, return_inverse=True)[1] if y.dtype.kind not in "iu" else y
        train, test = stratified_split(codes, round(test_fraction * len(y)), seed)
        provenance.update({"split": "stratified", "split_seed": seed, "test_fraction": test_fraction})
    data = {
        "x_train": x[train],
        "y_train": y[train],
        "x_test": x[test],
        "y_test": y[test],
        "feature_names": [str(c) for c in features],
        "label_name": f"column {label!r}",
        "provenance": provenance,
        "source": str(path),
    }
    if class_names is not None:
        data["class_names"] = class_names
    return data


def load_file(name: str, base_dir=None, *, label=None, split=None, test_fraction=None, seed=None) -> dict:
    """Read ``file:PATH`` into a mapping for ``check_dataset`` (with its source file and SHA-256).

    Table options (CSV, Parquet): ``label`` (default "label"), ``split`` (default "split", used when the
    column exists), ``test_fraction`` (default 0.25) and ``seed`` (default 0) when there is no split column.
    """
    path = check_file(name, base_dir)
    options = {"label": label, "split": split, "test_fraction": test_fraction, "seed": seed}
    given = [k for k, v in options.items() if v is not None]
    if path.suffix.lower() == ".npz":
        if given:
            raise ValueError(f"{path}: a .npz dataset carries its own split and takes no options, got {given}")
        data = _load_npz(path)
        data["provenance"] = {}
    else:
        label = LABEL.check(LABEL.default if label is None else label)
        if split is not None:
            SPLIT.check(split)
        data = _load_table(path, label, split, test_fraction, seed)
    data["provenance"].update({"source": str(path), "sha256": file_sha256(path), "format": path.suffix.lower()[1:]})
    return data
