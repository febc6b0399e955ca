"""The one registry of datasets, ``DATASETS``: name -> ``DatasetEntry`` (loader, accepted options, summary).

``register_dataset`` is the only way a dataset becomes known; the built-ins (``losslab.data.builtin``'s
``BUILTIN_DATASETS``) are registered the same way, below. A ``file:PATH`` name is
not registered: ``losslab.data.files`` reads it. ``resolve_dataset_name`` and ``dataset_option_names``
check a spec's names and options before anything trains; ``check_available`` checks that the files a
dataset needs are there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from losslab.data import files as dataset_files
from losslab.data.builtin import BUILTIN_DATASETS
from losslab.data.dataset import COMMON_PARAMS, Dataset
from losslab.data.idx import IDX_FILES, find_idx_file, resolve_data_dir
from losslab.params import Param
from losslab.plugins import accepted_keywords, check_name, origin_of
from losslab.registry import Registry, caller_module

#: Options of ``load_dataset`` itself, accepted for every dataset.
COMMON_OPTIONS = frozenset(COMMON_PARAMS)


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, the options it accepts (None: any), those of them declared (``params``:
    constraint, default, meaning) and a one-line summary."""

    name: str
    loader: Callable[..., Dataset | Mapping]
    options: frozenset[str] | None
    summary: str
    module: str
    takes_data_dir: bool = False
    params: tuple[Param, ...] = ()

    @property
    def origin(self) -> str:
        return origin_of(self.module)


#: The one registry of datasets: name -> DatasetEntry. A ``file:PATH`` name is valid too, without an entry.
DATASETS: Registry[DatasetEntry] = Registry("dataset", "datasets", more=", or file:path/to/data.npz (.csv, .parquet)")


def register_dataset(name: str, loader, options=None, summary: str = "", *, replace: bool = False) -> DatasetEntry:
    """Add a dataset to ``DATASETS`` (the one registry; the built-ins are registered the same way).

    ``loader(**options)`` returns a ``Dataset`` or a mapping of arrays ``x_train``, ``y_train``, ``x_test``,
    ``y_test`` and optionally ``class_names`` (numpy arrays, tensors or lists; features [n, *input_shape],
    labels integer classes 0..K-1). ``load_dataset`` checks it (``check_dataset``), carves the validation
    split and standardises it. ``options`` lists the keyword options the loader accepts, for validating
    specs early, each a name or a ``losslab.params.Param`` declaring its constraint, default and meaning (a
    declared option's value is checked when a spec is read; None: the names in the loader's signature; a
    loader taking ``**kwargs`` accepts any).
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
    params: tuple[Param, ...] = ()
    takes_data_dir = accepted is None or "data_dir" in accepted
    if options is None:
        options = None if accepted is None else accepted - {"data_dir"}
    else:
        if isinstance(options, (str, Param)) or not all(isinstance(o, (str, Param)) for o in options):
            raise ValueError(f"dataset {name!r}: options must be a list of option names, got {options!r}")
        params = tuple(o for o in options if isinstance(o, Param))
        options = {o.name if isinstance(o, Param) else o for o in options}
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
    entry = DatasetEntry(
        name,
        loader,
        None if options is None else frozenset(options),
        summary,
        getattr(loader, "__module__", None) or "?",
        takes_data_dir,
        params,
    )
    return DATASETS.register(name, entry, replace=replace, module=caller_module())


for _entry in BUILTIN_DATASETS:  # losslab's own, registered as a user's would be
    register_dataset(*_entry)


def resolve_dataset_name(name, base_dir=None) -> str:
    """Check a dataset name, a registered one or ``file:PATH``; return it with a file path made absolute.

    ``base_dir`` is the folder a relative ``file:`` path is relative to (a spec's folder; default: here).
    """
    if dataset_files.is_file_name(name):
        return dataset_files.PREFIX + str(dataset_files.check_file(name, base_dir))
    DATASETS.get(name)  # an unknown name raises, listing the valid ones
    return name


def dataset_option_names(name: str) -> set[str] | None:
    """The options ``load_dataset(name, ...)`` accepts besides ``classes`` and ``data_dir`` (None: any)."""
    if dataset_files.is_file_name(name):
        return set(dataset_files.file_options(name) | COMMON_OPTIONS)
    options = DATASETS[resolve_dataset_name(name)].options
    return None if options is None else set(options | COMMON_OPTIONS)


def dataset_params(name: str) -> dict[str, Param]:
    """The declared options of a dataset (registered or ``file:PATH``), ``load_dataset``'s own included, by name."""
    if dataset_files.is_file_name(name):
        own = dataset_files.TABLE_PARAMS if dataset_files.file_options(name) else ()
    else:
        own = DATASETS[resolve_dataset_name(name)].params
    return {**COMMON_PARAMS, **{p.name: p for p in own}}


def check_available(name: str, data_dir=None) -> None:
    """Raise now if ``name`` needs files that are missing (a cheap check before training)."""
    if dataset_files.is_file_name(name):
        dataset_files.check_file(name)
    elif name in IDX_FILES:
        folder = resolve_data_dir(data_dir)
        for filename in IDX_FILES[name]:
            find_idx_file(name, filename, folder)
