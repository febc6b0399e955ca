"""Import user plugins (a module name or a ``.py`` file) and resolve ``MODULE:FUNCTION`` references.

A plugin is ordinary Python that calls ``losslab.register_loss`` / ``register_dataset`` /
``register_model`` when imported, or simply defines functions that a command names directly::

    losslab check-loss my_losses.py:tempered_ce          # a file, relative to the current folder
    losslab check-loss mypkg.losses:tempered_ce          # an importable module

A file is imported under a unique module name derived from its absolute path (``losslab_plugin_<stem>_<hash>``)
and registered in ``sys.modules`` so that pickling and dataclasses work; while it imports, its folder is first
on ``sys.path`` (as Python does for a script, so ``import helpers`` finds ``helpers.py`` beside it), and taken
off again afterwards; no ``__pycache__`` is written beside it. Each imported plugin is recorded in ``PLUGINS``
with its source, kind and the SHA-256 of its file, for the manifest of a run. Every bad input is a one-line
``ValueError`` naming the plugin, the file and line where that helps, and the fix.

A plugin is contained while it imports (``contained``): what it prints goes to stderr, never into a command's
output (``check-loss --json``); a change of the current folder or of the SIGINT/SIGTERM handlers is undone; and
``sys.exit`` (or any ``BaseException`` but ``KeyboardInterrupt``) becomes the same one-line ``ValueError`` as an
exception would, while Ctrl-C becomes ``PluginInterrupted`` (a ``KeyboardInterrupt`` naming the plugin).

This module imports nothing from losslab: the registries of every layer call it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Loss, dataset and model names: a letter, then letters, digits, '-' or '_'.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def check_name(kind: str, name) -> str:
    """Return ``name`` if it is a valid registry name for ``kind`` ("loss", "dataset", "model"), else raise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid; use letters, digits, '-' and '_', starting with a letter "
            "(e.g. 'my_loss')"
        )
    return name


@dataclass(frozen=True)
class Plugin:
    """One imported plugin: what the user gave, how it was imported, and a hash of its file."""

    source: str  # as given: "mypkg.losses" or "path/to/my_losses.py"
    kind: str  # "module" or "file"
    module: str  # the name in sys.modules
    path: str | None  # absolute path of the file that defines it (None for namespace packages)
    sha256: str | None

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "module": self.module,
            "path": self.path,
            "sha256": self.sha256,
        }


#: Every plugin imported in this process, by module name (in import order).
PLUGINS: dict[str, Plugin] = {}


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's contents, in hex: the one checksum of files (data, plugins, IDX files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(payload, *, length: int = 16) -> str:
    """A short hash of settings: the SHA-256 of ``payload`` as JSON with sorted keys (other values by ``str``).

    The one hash of settings in losslab (a cell's fingerprint, the key of a cached execution plan); equal
    settings give equal fingerprints in any process. Files are hashed by ``file_sha256``.
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def is_file_source(source: str) -> bool:
    """A source is a file when it ends in .py or contains a path separator; otherwise a module name."""
    return source.endswith(".py") or "/" in source or "\\" in source


def where_it_failed(exc: BaseException, path: str | None) -> str:
    """'file, line N' of the innermost frame in the plugin's own file (else the innermost frame)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is not None and Path(f.filename).resolve() == Path(path)]
    frame = (own or frames or [None])[-1]
    return f"{frame.filename}, line {frame.lineno}" if frame is not None else "?"


def _failed_inside(source: str, exc: BaseException, path: str | None) -> ValueError:
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    if isinstance(exc, SystemExit):
        return ValueError(
            f"plugin {source!r} called sys.exit({exc.code!r}) while being imported "
            f"({where_it_failed(exc, path)}); a plugin only defines and registers: remove the call, or guard "
            "script code with if __name__ == '__main__'"
        )
    return ValueError(
        f"plugin {source!r} failed to import: {type(exc).__name__}: {message} ({where_it_failed(exc, path)}); "
        "fix the plugin and retry"
    )


class PluginInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (or a KeyboardInterrupt raised by the plugin) while a plugin was importing; names the
    plugin. ``terminated``: it was SIGTERM (``losslab.errors.Terminated``)."""

    def __init__(self, message: str, terminated: bool = False):
        super().__init__(message)
        self.terminated = terminated


@contextlib.contextmanager
def stdout_to_stderr():
    """Send what is printed in the block to stderr, from Python (``print``) and from C (file descriptor 1).

    Used while plugins import and while a command computes output that must stay clean (``check-loss --json``):
    a plugin's chatter must never land in a command's output."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        saved = None
        try:
            sys.__stdout__ and sys.__stdout__.flush()
            saved = os.dup(1)
            os.dup2(2, 1)
        except (OSError, ValueError, AttributeError):  # no descriptor 1 (closed), or no real stdout: Python level only
            if saved is not None:
                os.close(saved)
            saved = None
        if saved is not None:

            def restore(fd=saved):
                with contextlib.suppress(Exception):
                    sys.__stdout__ and sys.__stdout__.flush()
                os.dup2(fd, 1)
                os.close(fd)

            stack.callback(restore)
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        yield


_GUARDED_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)


@contextlib.contextmanager
def contained(source: str, path: str | None, folder: str | None = None):
    """Run a plugin's import so that it cannot change the command around it (see the module docstring).

    ``folder`` is put first on ``sys.path`` for the block (the plugin's own folder). ``KeyboardInterrupt``
    becomes ``PluginInterrupted``; the caller turns any other exception (``SystemExit`` included) into one line.
    """
    cwd = os.getcwd()
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    handlers = {s: signal.getsignal(s) for s in _GUARDED_SIGNALS} if main_thread else {}
    added = folder is not None and folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        with stdout_to_stderr(), _no_bytecode():
            yield
    except KeyboardInterrupt as exc:
        raise PluginInterrupted(
            f"interrupted while importing plugin {source!r} ({where_it_failed(exc, path)}); nothing was written",
            terminated=bool(getattr(exc, "terminated", False)),  # losslab.errors.Terminated: SIGTERM
        ) from None
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        if os.getcwd() != cwd:
            os.chdir(cwd)  # a plugin's os.chdir must not move the command's relative paths
        for number, handler in handlers.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)


@contextlib.contextmanager
def _no_bytecode():
    """Import without writing ``__pycache__`` beside the plugin: a command writes nothing outside its output."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def _file_module_name(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    return f"losslab_plugin_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def _import_file(source: str, shown: str | None = None) -> Plugin:
    path = Path(source).expanduser()
    source = shown or source  # what messages and listings call it
    if not path.is_file():
        where = "is a folder, not a .py file" if path.is_dir() else "does not exist"
        raise ValueError(f"plugin file {source!r} {where} (looked at {path.resolve()}); check the path")
    if path.suffix != ".py":
        raise ValueError(f"plugin file {source!r} must be a Python file ending in .py")
    path = path.resolve()
    digest = file_sha256(path)
    name = _file_module_name(path)
    known = PLUGINS.get(name)
    if known is not None and known.sha256 == digest and name in sys.modules:
        return known  # the same file, unchanged: importing it again would register everything twice
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and typing look modules up here
    try:
        with contained(source, str(path), str(path.parent)):
            spec.loader.exec_module(module)
    except PluginInterrupted:
        sys.modules.pop(name, None)
        raise
    except BaseException as exc:  # noqa: BLE001 - anything raised by user code (sys.exit too): one line naming file and line
        sys.modules.pop(name, None)
        raise _failed_inside(source, exc, str(path)) from exc
    plugin = Plugin(source, "file", name, str(path), digest)
    PLUGINS[name] = plugin
    return plugin


def _import_module(source: str) -> Plugin:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", source):
        raise ValueError(
            f"plugin {source!r} is neither an importable module name (e.g. mypkg.losses) nor a .py file path"
        )
    try:
        found = importlib.util.find_spec(source)
    except ModuleNotFoundError as exc:  # a parent package is missing
        found, missing = None, exc.name
    except Exception as exc:  # noqa: BLE001 - a parent package failed to import
        raise _failed_inside(source, exc, None) from exc
    else:
        missing = source
    if found is None:
        raise ValueError(
            f"plugin module {source!r} not found (no module named {missing!r}); install it, add its folder to "
            "PYTHONPATH, or give the path of a .py file"
        )
    try:
        with contained(source, found.origin):
            module = importlib.import_module(source)
    except PluginInterrupted:
        raise
    except BaseException as exc:  # noqa: BLE001 - sys.exit too
        raise _failed_inside(source, exc, found.origin) from exc
    path = getattr(module, "__file__", None)
    plugin = Plugin(
        source, "module", source, str(Path(path).resolve()) if path else None, file_sha256(path) if path else None
    )
    PLUGINS[source] = plugin
    return plugin


def import_plugin(source: str, *, shown: str | None = None) -> Plugin:
    """Import a plugin given as a module name (``mypkg.losses``) or a file path (``path/to/losses.py``).

    Returns its ``Plugin`` record (also kept in ``PLUGINS``). Importing the same unchanged file twice
    runs it once. ``shown``: what messages call a file plugin (a spec gives an absolute path, and names it
    as the spec does).
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"plugin must be a module name or a .py file path, got {source!r}")
    source = source.strip()
    return _import_file(source, shown) if is_file_source(source) else _import_module(source)


def import_plugins(sources: Iterable[str]) -> list[Plugin]:
    """Import each plugin in order; the first bad one raises."""
    return [import_plugin(s) for s in sources]


def module_of(plugin: Plugin):
    return sys.modules[plugin.module]


def split_reference(ref: str) -> tuple[str, str]:
    """'MODULE:FUNCTION' or 'path/file.py:FUNCTION' -> (source, attribute)."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ValueError(
            f"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {ref!r}; e.g. my_losses.py:tempered_ce"
        )
    source, _, attr = ref.rpartition(":")
    if not source or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attr):
        raise ValueError(
            f"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {ref!r}; the part after the last ':' must "
            "be a Python name"
        )
    return source, attr


def resolve(ref: str) -> tuple[object, Plugin]:
    """Import the plugin of ``MODULE:NAME`` / ``file.py:NAME`` and return (the object NAME, its Plugin)."""
    source, attr = split_reference(ref)
    plugin = import_plugin(source)
    module = module_of(plugin)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(
                n for n, v in vars(module).items() if not n.startswith("_") and callable(v) and not inspect.ismodule(v)
            )
            raise ValueError(
                f"plugin {source!r} has no {attr!r}; it defines: {', '.join(defined) or 'no public functions'}"
            )
        obj = getattr(obj, part)
    return obj, plugin


def resolve_callable(ref: str) -> tuple[Callable, Plugin]:
    """Like ``resolve``, but the object must be callable."""
    obj, plugin = resolve(ref)
    if not callable(obj):
        raise ValueError(f"{ref!r} is a {type(obj).__name__}, not a function; name a function defined in the plugin")
    return obj, plugin


def _signature(fn: Callable):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins and C functions have none: nothing to check
        return None


def describe_function(fn: Callable) -> str:
    """'name (file, line N)' for messages."""
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", type(fn).__name__))
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(name)
    return f"{name!r} ({code.co_filename}, line {code.co_firstlineno})"


def check_loss_signature(fn: Callable, params: Iterable[str] = (), what: str = "loss function") -> None:
    """Raise unless ``fn`` can be called as ``fn(z, y, **params)`` with the given parameter names."""
    sig = _signature(fn)
    if sig is None:
        return
    params = list(params)
    try:
        sig.bind(None, None, **{p: None for p in params})
    except TypeError as exc:
        wanted = "(z, y" + "".join(f", {p}=..." for p in params) + ")"
        raise ValueError(
            f"{what} {describe_function(fn)} has signature {sig}, which cannot be called as {wanted} ({exc}); "
            "define it as def f(z, y, **params): z are the logits [..., K], y probability targets of the same shape"
        ) from None


def keyword_defaults(fn: Callable) -> dict:
    """The parameters of ``fn(z, y, name=default, ...)`` after the first two that have defaults."""
    sig = _signature(fn)
    if sig is None:
        return {}
    ordinary = [
        p
        for p in sig.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    return {p.name: p.default for p in ordinary[2:] if p.default is not inspect.Parameter.empty}


def accepted_keywords(fn: Callable) -> set[str] | None:
    """Names ``fn`` accepts as keyword arguments; None if it takes ``**kwargs`` (anything)."""
    sig = _signature(fn)
    if sig is None:
        return None
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {
        p.name
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def origin_of(module_name: str | None) -> str:
    """How to show where a registered entry came from: 'built-in', a plugin's source, or a module name."""
    if not module_name:
        return "?"
    if module_name == "losslab" or module_name.startswith("losslab."):
        return "built-in"
    plugin = PLUGINS.get(module_name)
    return plugin.source if plugin is not None else module_name
