"""A spec's ``plugins``: imported before the spec is validated, recorded in the manifest, shipped to Ray workers.

    plugins = ["mypkg.losses", "my_losses.py"]   # module names, or .py files relative to the spec's folder
    plugins = ["my_losses.py:tempered_ce"]       # a function of a plugin, registered as the loss of its name

``load_spec`` imports each plugin (``losslab.plugins.import_plugin``) before it reads anything else of the
spec, so a grid may name a loss, dataset or model that a plugin registers. Each becomes a ``SpecPlugin``:
its source as the spec gives it, its kind ("file" or "module"), the module name it was imported under, the
absolute path and the SHA-256 of its file. The manifest records these (``SpecPlugin.record``), and the
hashes are part of every cell's fingerprint, so a plugin file edited in place retrains its cells on resume.

An entry ``FILE.py:FUNCTION`` (or ``MODULE:FUNCTION``) imports the plugin and registers its FUNCTION as a loss
named FUNCTION (``losslab.register_loss(FUNCTION, values=...)``): a loss written as one plain function needs no
registration code to be named in a spec (``losslab compare`` writes such entries).

Ray workers get the plugins with each cell, before it trains (``install``): a file plugin travels as its
text, which the worker checks against the SHA-256 and executes under the driver's module name, so workers
need neither the file nor a shared filesystem; a module plugin is imported by name (it must be installed on
every node), and its file must hash the same as on the driver, else the cell fails naming the plugin.

A file plugin may import modules that lie beside it (``import helpers`` for ``helpers.py`` in its folder, as a
script may): its folder is on ``sys.path`` while it imports. Those modules (``SpecPlugin.helpers``) travel to
the workers with the plugin's text, each checked against its SHA-256, and their hashes join the cells'
fingerprints, so editing a helper retrains the cells as editing the plugin does.

The registries remember which module registered each entry (``losslab.registry``), so that importing a changed
version of the same plugin in a long-lived process (a Ray worker reused by the next run, a notebook) replaces
its entries instead of failing with "already registered"; a plugin that fails half-way leaves the registries as
they were (each registry's snapshot, restored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.abc
import importlib.util
import inspect
import linecache
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from losslab.core import LOSSES
from losslab.core.losses import make_loss
from losslab.data import DATASETS
from losslab.models import MODELS
from losslab.plugins import (
    PLUGINS,
    Plugin,
    PluginInterrupted,
    contained,
    file_sha256,
    fingerprint,
    import_plugin,
    is_file_source,
    origin_of,
    where_it_failed,
)


@dataclasses.dataclass(frozen=True)
class Helper:
    """A module a file plugin imported from its own folder (``helpers.py``, or a package beside it)."""

    module: str  # its name in sys.modules: "helpers", "mypkg.sub"
    path: str  # relative to the plugin's folder
    package: bool  # an __init__.py
    sha256: str
    text: bytes = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class SpecPlugin(Plugin):
    """One plugin of a spec: a ``Plugin`` (its source as the spec gives it, kind, module, path, SHA-256) that also
    carries a file plugin's text, for workers."""

    text: bytes | None = dataclasses.field(default=None, repr=False, compare=False)  # a file plugin's source
    loss: str | None = None  # FILE.py:FUNCTION entries: the function registered as the loss of its name
    helpers: tuple[Helper, ...] = ()  # modules beside a file plugin that it imported

    @property
    def digest(self) -> str | None:
        """What a cell's fingerprint takes of the plugin: its file's SHA-256, with its helpers' where it has any."""
        if not self.helpers:
            return self.sha256
        return fingerprint([self.sha256, [(h.module, h.sha256) for h in self.helpers]], length=64)

    def record(self) -> dict:
        """What the manifest keeps of it (not the texts): a FILE.py:FUNCTION entry also names its loss, a file
        plugin with modules beside it lists them."""
        record = self.as_dict()
        if self.loss:
            record["loss"] = self.loss
        # What it registered, by registry, so that the report can say where each loss of the run came from.
        registered = {kind: registry.registered_by(self.module) for kind, registry in REGISTRIES.items()}
        record["registered"] = {kind: names for kind, names in registered.items() if names}
        if self.helpers:
            record["helpers"] = [{"module": h.module, "path": h.path, "sha256": h.sha256} for h in self.helpers]
        return record


#: The registries a plugin may add to, by the kind of entry.
REGISTRIES = {"loss": LOSSES, "dataset": DATASETS, "model": MODELS}


@contextlib.contextmanager
def _undo_on_failure() -> Iterator[None]:
    """If the block (a plugin's import) fails, put every registry back as it was before."""
    before = {kind: registry.snapshot() for kind, registry in REGISTRIES.items()}
    try:
        yield
    except BaseException:
        for kind, registry in REGISTRIES.items():
            registry.restore(before[kind])
        raise


def forget(module: str) -> None:
    """Take back what ``module`` registered (restoring any entry it replaced), before importing a new version.

    The registries record the module whose code registered each entry, however the plugin was first imported
    (a spec, ``check-loss``, ``--plugin``)."""
    for registry in REGISTRIES.values():
        registry.forget(module)


def function_entry(given: str) -> tuple[str, str | None]:
    """'my_losses.py:tempered_ce' -> ('my_losses.py', 'tempered_ce'); an entry without a function -> (given, None).
    (A Windows path's drive, 'C:\\losses.py', is not a function: what follows its colon is not a Python name.)"""
    source, colon, name = given.rpartition(":")
    if colon and source and name.isidentifier():
        return source, name
    return given, None


def register_function(plugin: SpecPlugin) -> None:
    """Register the function of a ``FILE.py:FUNCTION`` entry as the loss FUNCTION, as its plugin's own entry (so
    ``forget`` takes it back with the plugin); a loss of that name from anywhere else is an error, not replaced."""
    module = sys.modules[plugin.module]
    function = getattr(module, plugin.loss, None)
    if not callable(function):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ValueError(
            f"{plugin.source!r}: the plugin has no function {plugin.loss!r}; it defines: {', '.join(defined) or 'none'}"
        )
    if plugin.loss in LOSSES:
        if LOSSES.record(plugin.loss).module == plugin.module:
            return  # the plugin registered it itself (or this entry did, on an earlier import)
        raise ValueError(
            f"{plugin.source!r}: a loss named {plugin.loss!r} exists already ({LOSSES.origin(plugin.loss)}); rename "
            "the function, or register it under another name with losslab.register_loss in the plugin"
        )
    doc = (inspect.getdoc(function) or "").strip().splitlines()
    loss = make_loss(plugin.loss, values=function, summary=doc[0] if doc else f"{plugin.loss} ({plugin.source})")
    LOSSES.register(plugin.loss, loss, module=plugin.module)


def _import_one(given: str, folder: str | None) -> SpecPlugin:
    source, function = function_entry(given)
    plugin = _import_source(source, folder)
    if function is None:
        return plugin
    plugin = dataclasses.replace(plugin, source=given, loss=function)
    with _undo_on_failure():
        register_function(plugin)
    return plugin


def _import_source(given: str, folder: str | None) -> SpecPlugin:
    if not is_file_source(given):  # a module: imported by name, once per process
        with _undo_on_failure():
            plugin = import_plugin(given)
        return SpecPlugin(given, "module", plugin.module, plugin.path, plugin.sha256)
    path = Path(given).expanduser()
    if not path.is_absolute() and folder is not None:
        path = Path(folder) / path  # relative to the spec's folder, not to where losslab runs
    resolved = path.resolve()
    if resolved.is_file():
        digest = file_sha256(resolved)
        for old in list(PLUGINS.values()):  # an edited file replaces what its previous version registered
            if old.kind == "file" and old.path == str(resolved) and old.sha256 != digest:
                forget(old.module)
    with _undo_on_failure():
        plugin = import_plugin(str(path), shown=given)
    text = Path(plugin.path).read_bytes()
    if hashlib.sha256(text).hexdigest() != plugin.sha256:
        raise ValueError(f"plugin file {given!r} changed while it was being imported; run again")
    PLUGINS[plugin.module] = dataclasses.replace(plugin, source=given)  # listings show it as the spec names it
    helpers = _helpers(Path(plugin.path).parent)
    return SpecPlugin(given, "file", plugin.module, plugin.path, plugin.sha256, text, helpers=helpers)


def _helpers(folder: Path) -> tuple[Helper, ...]:
    """The modules imported so far from ``folder`` as a ``sys.path`` entry: a plugin's own helpers, which
    workers get with it (a module or package whose top level is ``folder/NAME.py`` or ``folder/NAME/__init__.py``)."""
    found = []
    for name, module in list(sys.modules.items()):
        top = name.split(".")[0]
        if top.startswith("losslab"):
            continue
        top_file = getattr(sys.modules.get(top), "__file__", None)
        file = getattr(module, "__file__", None)
        if not top_file or not file or not str(file).endswith(".py"):
            continue
        try:
            top_path, file_path = Path(top_file).resolve(), Path(file).resolve()
        except (OSError, RuntimeError):
            continue
        if top_path not in (folder / f"{top}.py", folder / top / "__init__.py") or not file_path.is_file():
            continue
        data = file_path.read_bytes()
        relative = str(file_path.relative_to(folder))
        found.append(Helper(name, relative, file_path.name == "__init__.py", hashlib.sha256(data).hexdigest(), data))
    return tuple(sorted(found, key=lambda h: h.module))


def import_spec_plugins(value, folder: str | None, where: str) -> tuple[SpecPlugin, ...]:
    """Import a spec's ``plugins`` list in order (files relative to ``folder``) and return their records.

    ``where`` (e.g. "spec.toml: plugins") starts every error: a bad list, a missing module or file, or a
    plugin that fails to import (a syntax error, a loss with the wrong signature) is one ValueError naming
    the spec, the plugin, and the file and line where that helps.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(
            f"{where}: must be a list of module names or .py file paths (relative to the spec's folder), "
            f'got {value!r}; e.g. plugins = ["my_losses.py"]'
        )
    seen: set[str] = set()
    found = []
    for i, given in enumerate(value):
        given = given.strip()
        if given in seen:
            raise ValueError(f"{where}[{i}]: {given!r} is listed twice; list each plugin once")
        seen.add(given)
        try:
            found.append(_import_one(given, folder))
        except ValueError as exc:
            raise ValueError(f"{where}[{i}] ({given!r}): {exc}") from None
    return tuple(found)


#: File plugins that ``install`` executed in this process (a worker), by module name.
_INSTALLED: set[str] = set()


def install(plugins: Sequence[SpecPlugin]) -> None:
    """Import the driver's plugins in this process (a Ray worker), each exactly the version the driver used.

    A plugin already imported here at the same SHA-256 is skipped (workers run many cells). A file plugin
    is executed from the text the driver sent, under the driver's module name; a module plugin is imported
    by name and must hash the same as the driver's. Raises ValueError naming the plugin otherwise. File
    plugins installed for an earlier run and not among ``plugins`` are taken back first, so a worker that
    serves several runs (another spec, a copy of the plugin elsewhere) has exactly this run's entries.
    """
    wanted = {p.module for p in plugins}
    for stale in sorted(_INSTALLED - wanted):
        forget(stale)
        sys.modules.pop(stale, None)
        PLUGINS.pop(stale, None)
        _INSTALLED.discard(stale)
    for p in plugins:
        known = PLUGINS.get(p.module)
        if known is not None and known.sha256 == p.sha256 and p.module in sys.modules:
            if p.loss:
                register_function(p)
            continue
        if p.kind == "file":
            _execute_text(p)
        else:
            with _undo_on_failure():
                plugin = import_plugin(p.module)
            if plugin.sha256 != p.sha256:
                raise ValueError(
                    f"plugin module {p.source!r} on this worker ({plugin.path}, SHA-256 {str(plugin.sha256)[:12]}) is "
                    f"not the driver's ({p.path}, SHA-256 {str(p.sha256)[:12]}); install the same version on every node"
                )
        if p.loss:
            register_function(p)


def _execute_text(p: SpecPlugin) -> None:
    if p.text is None or hashlib.sha256(p.text).hexdigest() != p.sha256:
        raise ValueError(
            f"plugin {p.source!r}: the text received from the driver does not match its SHA-256 "
            f"({str(p.sha256)[:12]}); run again"
        )
    forget(p.module)  # an older version run by this worker for an earlier run
    filename = p.path or p.source
    _remember_lines(filename, p.text)  # tracebacks and where_it_failed show its lines where the file is absent
    module = types.ModuleType(p.module)
    module.__file__ = filename
    sys.modules[p.module] = module  # dataclasses and pickling look modules up here
    folder = str(Path(filename).parent)
    for helper in p.helpers:  # a module of that name from an earlier run, with other text: not this run's
        old = sys.modules.get(helper.module)
        if old is not None and getattr(old, "__losslab_sha256__", None) != helper.sha256:
            for name in [n for n in sys.modules if n == helper.module or n.startswith(helper.module + ".")]:
                sys.modules.pop(name, None)
    finder = _HelperFinder(p.helpers, folder)
    sys.meta_path.insert(0, finder)
    try:
        with _undo_on_failure(), contained(p.source, p.path):
            exec(compile(p.text, filename, "exec"), module.__dict__)
    except PluginInterrupted:
        sys.modules.pop(p.module, None)
        raise
    except BaseException as exc:  # noqa: BLE001 - user code (sys.exit too): one line naming the plugin, file and line
        sys.modules.pop(p.module, None)
        if isinstance(exc, SystemExit):
            raise ValueError(
                f"plugin {p.source!r} called sys.exit({exc.code!r}) while being imported on this worker "
                f"({where_it_failed(exc, p.path)}); a plugin only defines and registers: remove the call"
            ) from exc
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ValueError(
            f"plugin {p.source!r} failed to import on this worker: {type(exc).__name__}: {message} "
            f"({where_it_failed(exc, p.path)})"
        ) from exc
    finally:
        sys.meta_path.remove(finder)
    PLUGINS[p.module] = Plugin(p.source, "file", p.module, p.path, p.sha256)
    _INSTALLED.add(p.module)


def _remember_lines(filename: str, text: bytes) -> None:
    linecache.cache[filename] = (len(text), None, text.decode("utf-8", "replace").splitlines(True), filename)


class _HelperLoader(importlib.abc.Loader):
    """Executes a helper module from the text the driver sent (the worker may not have the file)."""

    def __init__(self, helper: Helper, filename: str):
        self.helper, self.filename = helper, filename

    def create_module(self, spec):
        return None  # the default module

    def exec_module(self, module) -> None:
        if hashlib.sha256(self.helper.text).hexdigest() != self.helper.sha256:
            raise ValueError(f"helper module {self.helper.module!r}: the text received does not match its SHA-256")
        module.__file__ = self.filename
        module.__losslab_sha256__ = self.helper.sha256
        _remember_lines(self.filename, self.helper.text)
        exec(compile(self.helper.text, self.filename, "exec"), module.__dict__)


class _HelperFinder(importlib.abc.MetaPathFinder):
    """Finds a file plugin's helpers (``import helpers``) among the texts the driver sent, before any other finder."""

    def __init__(self, helpers: Sequence[Helper], folder: str):
        self.helpers, self.folder = {h.module: h for h in helpers}, folder

    def find_spec(self, name, path=None, target=None):
        helper = self.helpers.get(name)
        if helper is None:
            return None
        filename = str(Path(self.folder) / helper.path)
        spec = importlib.util.spec_from_loader(
            name, _HelperLoader(helper, filename), origin=filename, is_package=helper.package
        )
        spec.has_location = True
        return spec


def plugin_of(module: str | None) -> str | None:
    """The source of the plugin that defines ``module`` (as listings show it), or None for anything else."""
    return origin_of(module) if module and module in PLUGINS else None


def registered_by(kind: str, name: str) -> str | None:
    """The source of the plugin that registered ``name`` in the ``kind`` registry ("loss", "dataset", "model"),
    or None (a built-in, a name registered by other code, or no such name)."""
    registry = REGISTRIES[kind]
    return plugin_of(registry.record(name).module) if name in registry else None
