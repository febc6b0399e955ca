"""The one check every dataset passes, built in or a user's, and the seeded stratified split.

``check_dataset`` takes what a loader returned (a mapping of arrays or a ``Dataset``; numpy arrays,
tensors or lists) and returns clean numpy arrays: features float64 of shape [n, *input_shape], labels
int64 in [0, K). Each failure is a one-line ValueError naming the dataset (or its file), the split, the
feature or column, and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
#: Each class needs at least this many training examples (one may go to the validation split).
MIN_PER_CLASS = 2


def _as_numpy(value, key: str, where: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ValueError(f"{where}: {key} is not an array ({type(exc).__name__}: {exc}); give a numpy array") from None
    return array


def _feature_label(index: int, shape: tuple, feature_names: Sequence[str] | None) -> str:
    if feature_names is not None and len(shape) == 1 and index < len(feature_names):
        return f"column {feature_names[index]!r}"
    if len(shape) == 1:
        return f"feature {index}"
    return f"feature {tuple(int(i) for i in np.unravel_index(index, shape))}"


def _check_features(x: np.ndarray, key: str, where: str, feature_names) -> np.ndarray:
    if x.dtype == object or x.dtype.kind in "USVOc":
        kind = {"U": "text", "S": "bytes", "V": "records", "O": "objects (text or mixed values)", "c": "complex"}
        raise ValueError(
            f"{where}: {key} has dtype {x.dtype} ({kind.get(x.dtype.kind, 'not numeric')}); losslab needs numeric "
            "features: encode categorical or text columns as numbers first"
        )
    if x.ndim < 2:
        raise ValueError(
            f"{where}: {key} must have shape [n_examples, features...], got shape {list(x.shape)}; "
            "a single feature per example is x.reshape(-1, 1)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{where}: {key} has no examples (shape {list(x.shape)}); every split needs examples")
    x = x.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = ~finite.reshape(x.shape[0], -1)
        per_feature = bad.sum(0)
        features = np.flatnonzero(per_feature)
        first_row = int(np.flatnonzero(bad.any(1))[0])
        label = _feature_label(int(features[0]), x.shape[1:], feature_names)
        others = f" and {len(features) - 1} other feature(s)" if len(features) > 1 else ""
        raise ValueError(
            f"{where}: {key} has {int(bad.sum())} NaN/inf value(s), {int(per_feature[features[0]])} in {label}{others} "
            f"(first at example {first_row}); remove or impute them before training"
        )
    return x


def _check_labels(y: np.ndarray, key: str, where: str, label_name: str) -> np.ndarray:
    if y.ndim != 1:
        raise ValueError(
            f"{where}: {key} ({label_name}) must be 1-D class indices of shape [n_examples], got shape "
            f"{list(y.shape)}; flatten it with y.ravel() (one-hot rows: y.argmax(1))"
        )
    if y.dtype == object or y.dtype.kind in "USV":
        raise ValueError(
            f"{where}: {key} ({label_name}) has dtype {y.dtype}; labels must be integer class indices 0..K-1: "
            "map names to indices, e.g. names, y = numpy.unique(y, return_inverse=True)"
        )
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(
                f"{where}: {key} ({label_name}) has {len(bad)} NaN/inf label(s) (first at example {int(bad[0])}); "
                "drop those examples or fill in their labels"
            )
        whole = y == np.round(y)
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            raise ValueError(
                f"{where}: {key} ({label_name}) must hold whole-number class indices, got {y[i]:g} at example {i}; "
                "labels are classes 0..K-1, not regression targets or probabilities"
            )
        return y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{where}: {key} ({label_name}) has dtype {y.dtype}; labels must be integers 0..K-1")
    return y.astype(np.int64, copy=False)


def check_dataset(
    data,
    *,
    name: str = "dataset",
    source: str | None = None,
    feature_names: Sequence[str] | None = None,
    label_name: str = "labels",
) -> dict:
    """Check a dataset and return it as clean numpy arrays.

    ``data`` is a mapping with x_train, y_train, x_test, y_test (optional x_val, y_val, class_names,
    provenance) or a ``Dataset``. Checks: every split present with examples; features numeric, of shape
    [n, *input_shape] with the same input shape in every split, finite; labels 1-D, as many as examples,
    integer class indices in [0, K) with K >= 2 (K = len(class_names), else the largest label + 1); every
    class present in the training split with at least 2 examples. Returns a dict with float64 features,
    int64 labels, ``class_names`` (a tuple of K strings) and ``provenance``.

    ``source`` (a file) names where the data came from in messages, ``feature_names`` the columns.
    """
    where = source if source is not None else f"dataset {name!r}"
    if hasattr(data, "x_train") and not isinstance(data, Mapping):  # a Dataset
        fields = [*REQUIRED, "x_val", "y_val", "class_names", "provenance"]
        data = {k: getattr(data, k) for k in fields if getattr(data, k, None) is not None}
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{where}: the loader returned a {type(data).__name__}; return a mapping with x_train, y_train, "
            "x_test, y_test (optionally class_names) or a losslab Dataset"
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(
            f"{where}: missing {', '.join(missing)} (got {', '.join(sorted(map(str, data))) or 'nothing'}); a dataset "
            "has x_train, y_train, x_test, y_test"
        )
    splits = ["train", "test"]
    if data.get("x_val") is not None and len(data["x_val"]) > 0:
        splits.insert(1, "val")
    arrays = {}
    for split in splits:
        x = _check_features(_as_numpy(data[f"x_{split}"], f"x_{split}", where), f"x_{split}", where, feature_names)
        y = _check_labels(_as_numpy(data[f"y_{split}"], f"y_{split}", where), f"y_{split}", where, label_name)
        if len(y) != len(x):
            raise ValueError(
                f"{where}: x_{split} has {len(x)} examples but y_{split} has {len(y)} labels; give one label per example"
            )
        if split != "train" and x.shape[1:] != arrays["x_train"].shape[1:]:
            raise ValueError(
                f"{where}: x_{split} has input shape {list(x.shape[1:])} but x_train has "
                f"{list(arrays['x_train'].shape[1:])}; every split needs the same features"
            )
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y

    names = data.get("class_names")
    labels = np.concatenate([arrays[f"y_{s}"] for s in splits])
    if labels.min() < 0:
        split = next(s for s in splits if arrays[f"y_{s}"].min() < 0)
        i = int(np.flatnonzero(arrays[f"y_{split}"] < 0)[0])
        raise ValueError(
            f"{where}: y_{split} ({label_name}) has label {int(arrays[f'y_{split}'][i])} at example {i}; "
            "labels are class indices 0..K-1"
        )
    if names is not None:
        names = tuple(str(n) for n in _as_numpy(names, "class_names", where).reshape(-1).tolist())
        k = len(names)
        if labels.max() >= k:
            split = next(s for s in splits if arrays[f"y_{s}"].max() >= k)
            i = int(np.flatnonzero(arrays[f"y_{split}"] >= k)[0])
            raise ValueError(
                f"{where}: y_{split} ({label_name}) has label {int(arrays[f'y_{split}'][i])} at example {i}, outside "
                f"[0, {k - 1}]: class_names lists {k} classes; labels must be 0..{k - 1}"
            )
    else:
        k = int(labels.max()) + 1
        names = tuple(str(i) for i in range(k))
    if k < 2:
        raise ValueError(f"{where}: only one class ({names[0]!r}) in {label_name}; a classifier needs at least 2")
    counts = np.bincount(arrays["y_train"], minlength=k)
    few = np.flatnonzero(counts < MIN_PER_CLASS)
    if len(few):
        c = int(few[0])
        more = f" (and {len(few) - 1} other class(es))" if len(few) > 1 else ""
        fix = "relabel the classes 0..K-1 without gaps" if counts[c] == 0 else "add examples or drop the class"
        raise ValueError(
            f"{where}: class {c} ({names[c]!r}) has {int(counts[c])} training example(s){more}; every class needs at "
            f"least {MIN_PER_CLASS} in the training split ({label_name}): {fix}"
        )
    arrays["class_names"] = names
    arrays["provenance"] = dict(data.get("provenance") or {})
    return arrays


def stratified_split(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into (kept, taken) with ``count`` taken, stratified by ``labels``, seeded.

    Each class gives its proportional share (largest remainders), never its last example. Both
    index arrays are sorted, so the examples keep their order.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if count <= 0:
        return np.arange(n), np.arange(0)
    classes, counts = np.unique(labels, return_counts=True)
    room = counts - 1
    quota = count * counts / n
    share = np.minimum(np.floor(quota).astype(int), room)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    left = count - int(share.sum())
    while left > 0 and (share < room).any():
        for i in order:
            if left and share[i] < room[i]:
                share[i] += 1
                left -= 1
    rng = np.random.default_rng(seed)
    taken = [rng.permutation(np.flatnonzero(labels == c))[:s] for c, s in zip(classes, share)]
    taken = np.sort(np.concatenate(taken)) if taken else np.arange(0)
    kept = np.setdiff1d(np.arange(n), taken, assume_unique=True)
    return kept, taken
