"""``Registry[T]``: the one kind of registry behind losses, datasets, models and figures.

A registry maps checked names to values of any type (a ``Loss``, a ``DatasetEntry``, a function) and
remembers, for each name, which module registered it: "built-in" for losslab's own modules, else the
plugin (or user module) whose code called ``register``. Registering a name again needs ``replace=True``;
the replaced entry is kept, so the listing can say "cross_entropy: replaced by plugin my_losses.py" and
``forget`` can put it back when the plugin that replaced it is taken back. An unknown name fails with the
valid names and, where users can add their own, the way to do it.

    >>> GREETINGS = Registry("greeting", "greetings")
    >>> GREETINGS.register("hello", "Hello!")
    >>> GREETINGS.get("hello"), GREETINGS.origin("hello")
    ('Hello!', 'built-in')            # registered from a losslab module; elsewhere: that module or plugin
    >>> GREETINGS.get("hi")
    ValueError: unknown greeting 'hi'; valid greetings: hello

Tests take a ``snapshot()`` of every registry and ``restore`` it afterwards (``snapshot_all``/``restore_all``).
Like ``losslab.plugins`` this is a base module: any layer may import it, and it imports only ``plugins``.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from losslab.plugins import PLUGINS, check_name, origin_of

T = TypeVar("T")

#: What an unknown-name error suggests where users can add their own entries.
PLUGIN_ROUTE = 'a {kind} of your own: pass --plugin FILE.py (or plugins = ["FILE.py"] in a spec)'


@dataclass(frozen=True)
class Record(Generic[T]):
    """One registration: the value, the module whose code registered it, and the record it replaced."""

    name: str
    value: T
    module: str
    replaced: Record[T] | None = None

    @property
    def origin(self) -> str:
        """'built-in', a plugin's source as the user gave it, or the registering module's name."""
        return origin_of(self.module)


@dataclass(frozen=True)
class Replacement:
    """A name whose first entry was replaced: by whom (``by``) and whose entry it was (``of``)."""

    kind: str
    name: str
    by: str
    of: str
    by_plugin: bool

    def describe(self) -> str:
        return f"{self.name}: replaced by {'plugin ' if self.by_plugin else ''}{self.by} (was {self.of})"


def caller_module(depth: int = 1) -> str:
    """The ``__name__`` of the module whose code called the function that calls this (``depth`` = 1), or of
    a caller further up. Front doors such as ``register_loss`` pass it to ``register`` as the registrar."""
    return sys._getframe(depth + 1).f_globals.get("__name__", "?")


_ALL: weakref.WeakSet[Registry] = weakref.WeakSet()


class Registry(Generic[T]):
    """Names -> values of one kind, each with the module that registered it.

    ``kind`` and ``plural`` name the entries in messages ("loss", "losses"). ``plugins``: users may add
    entries (an unknown name then suggests ``--plugin``). ``sort_names``: list the valid names sorted
    in messages (else in registration order). ``more``: what else is valid, appended to the list of names
    (e.g. ", or file:path/to/data.npz").
    """

    def __init__(self, kind: str, plural: str, *, plugins: bool = True, sort_names: bool = False, more: str = ""):
        self.kind, self.plural, self.plugins, self.sort_names, self.more = kind, plural, plugins, sort_names, more
        self._records: dict[str, Record[T]] = {}
        _ALL.add(self)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._records)})"

    # --- registering ------------------------------------------------------------------------------

    def register(self, name: str, value: T, *, replace: bool = False, module: str | None = None) -> T:
        """Add ``value`` under ``name`` and return it; an existing name needs ``replace=True``.

        ``module``: who registers it (default: the module whose code called ``register``); front doors
        pass their caller's (``caller_module()``).
        """
        check_name(self.kind, name)
        if not isinstance(replace, bool):
            raise ValueError(f"replace must be True or False, got {replace!r}")
        old = self._records.get(name)
        if old is not None and not replace:
            raise ValueError(
                f"{self.kind} {name!r} is already registered ({old.origin}); choose another name, or pass "
                "replace=True to replace it"
            )
        self._records[name] = Record(name, value, module or caller_module(), old)
        return value

    def forget(self, module: str) -> list[str]:
        """Take back every entry ``module`` registered, putting back any entry it replaced; returns the names.

        Used when a plugin is imported again in a long-lived process (a changed file, a Ray worker serving
        another run): its old entries go, and what they had replaced comes back.
        """
        touched = []
        for name, record in list(self._records.items()):
            chain = []
            while record is not None:
                chain.append(record)
                record = record.replaced
            kept = [r for r in chain if r.module != module]
            if len(kept) == len(chain):
                continue
            touched.append(name)
            rebuilt = None
            for r in reversed(kept):
                rebuilt = Record(r.name, r.value, r.module, rebuilt)
            if rebuilt is None:
                del self._records[name]
            else:
                self._records[name] = rebuilt
        return touched

    # --- looking up -------------------------------------------------------------------------------

    def get(self, name) -> T:
        """The value of ``name``; an unknown name is a ValueError listing the valid names (and the plugin route)."""
        record = self._records.get(name) if isinstance(name, str) else None
        if record is None:
            raise ValueError(self.unknown(name))
        return record.value

    def unknown(self, name) -> str:
        """The message for an unknown ``name``: the valid names, and how to add one's own."""
        names = sorted(self._records) if self.sort_names else list(self._records)
        message = f"unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(names)}{self.more}"
        return message + ("; " + PLUGIN_ROUTE.format(kind=self.kind) if self.plugins else "")

    def __getitem__(self, name: str) -> T:
        return self._records[name].value

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def names(self) -> list[str]:
        return list(self._records)

    def keys(self) -> list[str]:
        return list(self._records)

    def values(self) -> list[T]:
        return [r.value for r in self._records.values()]

    def items(self) -> list[tuple[str, T]]:
        return [(name, r.value) for name, r in self._records.items()]

    def record(self, name: str) -> Record[T]:
        return self._records[name]

    def origin(self, name: str) -> str:
        """Who registered ``name``: 'built-in', a plugin's source, or a module name."""
        return self._records[name].origin

    def registered_by(self, module: str) -> list[str]:
        """The names whose current entry ``module`` registered."""
        return [name for name, r in self._records.items() if r.module == module]

    def replacements(self) -> list[Replacement]:
        """Every name whose entry replaced another: who replaced it, and whose entry that was."""
        return [
            Replacement(self.kind, name, r.origin, r.replaced.origin, r.module in PLUGINS)
            for name, r in self._records.items()
            if r.replaced is not None
        ]

    # --- for tests ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Record[T]]:
        """The registry's state, to ``restore`` later (records are immutable: a shallow copy suffices)."""
        return dict(self._records)

    def restore(self, snapshot: dict[str, Record[T]]) -> None:
        self._records = dict(snapshot)


def snapshot_all() -> dict[Registry, dict]:
    """Every registry's state (the registries of the modules imported so far)."""
    return {registry: registry.snapshot() for registry in list(_ALL)}


def restore_all(snapshots: dict[Registry, dict]) -> None:
    """Put back the state ``snapshot_all`` took (a registry created since then keeps its entries)."""
    for registry, snapshot in snapshots.items():
        registry.restore(snapshot)
