"""``load_dataset``: every dataset, built in, registered or ``file:PATH``, through the same steps.

The loader's output is checked (``check_dataset``: shapes, dtypes, NaN/inf, labels, examples per class),
a stratified validation split is carved from the training split with a fixed seed (``validation=0.1`` by
default), and the inputs are standardised with statistics of the remaining training examples only
(``build_dataset``). Any dataset can be cut to a subset of classes (``classes=[0, 1]`` makes a binary
problem, relabelled 0 and 1).
"""

from __future__ import annotations

from pathlib import Path

from losslab.data import files as dataset_files
from losslab.data.checks import check_dataset
from losslab.data.dataset import STANDARDISE, VALIDATION, Dataset, build_dataset, subset_classes
from losslab.data.registry import COMMON_OPTIONS, DATASETS, dataset_option_names, dataset_params, resolve_dataset_name
from losslab.params import check_values
from losslab.plugins import where_it_failed


def load_dataset(
    name: str,
    *,
    classes: list[int] | None = None,
    data_dir=None,
    validation: float = VALIDATION.default,
    standardise: bool = STANDARDISE.default,
    **options,
) -> Dataset:
    """Load a dataset by name (registered, or ``file:path/to/data.npz``/``.csv``/``.parquet``), checked.

    ``classes`` keeps a subset; ``validation`` is the fraction of the training split held out as a
    stratified validation split (fixed seed ``VALIDATION_SEED``; 0 for none; at least min(1000, n / 4)
    examples otherwise), carved before standardisation; ``standardise=False`` keeps the inputs as the
    loader gives them; ``options`` go to the loader (``seed`` fixes the split or the generated data of
    digits, iris, wine, breast_cancer, mnist1d and blobs).
    """
    allowed = dataset_option_names(resolve_dataset_name(name))
    unknown = sorted(set(options) - allowed) if allowed is not None else []
    if unknown:
        valid = ", ".join(sorted(allowed - COMMON_OPTIONS)) or "none"
        if dataset_files.is_file_name(name) and not allowed - COMMON_OPTIONS:
            valid += " (a .npz file carries its own split)"
        raise ValueError(f"dataset {name!r}: unknown option(s) {unknown}; valid options: {valid}")
    try:  # each declared option's value (a loader's own checks may add more)
        check_values(dataset_params(name), {"validation": validation, "standardise": standardise, **options})
    except ValueError as exc:
        raise ValueError(f"dataset {name!r}: {exc}") from None
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
    dataset = build_dataset(label, arrays, float(validation), standardise)
    return subset_classes(dataset, list(classes)) if classes is not None else dataset
