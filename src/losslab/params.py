"""Parameters declared once: a name, a constraint on its type and value, a default, a one-line meaning, an example.

Every setting a user gives losslab (a ``TrainConfig`` field, a spec key, a loss parameter, a dataset option)
is declared here in one ``Param``, in the style of scikit-learn's ``validate_params`` (``Interval``,
``StrOptions``), and everything else is derived from the declaration: the check and its one-line message, the
default, the spec reference (``docs/spec.md``), the JSON Schema of spec files and the starter spec of
``losslab init``. A constraint never accepts ``True``/``False`` for a number (TOML's booleans are not 1 and 0).

    >>> epochs = Param("epochs", Interval(int, 1), 20, "passes over the training split")
    >>> epochs.problem(0)
    'must be a positive integer, got 0'
    >>> epochs.check(0)
    ValueError: epochs must be a positive integer, got 0

On a dataclass, ``setting(...)`` declares a field (its default and its ``Param``) and ``params_of(cls)`` reads
the declarations back, named by their fields. A base module: any layer may import it; it imports nothing of
losslab.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter that must be given.
REQUIRED: Any = _Required()
_KEY = "losslab.param"


def is_number(value) -> bool:
    """An int or a float, but not True/False (a bool is an int to Python, and TOML's true is not 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value) -> bool:
    """An int, but not True/False."""
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value) -> str:
    """A bound as the messages write it: 1 and 1.0 as 1, 0.5 as 0.5, 2**63 - 1 in full."""
    return str(value) if isinstance(value, int) else f"{value:g}"


class Constraint:
    """What values a parameter accepts: ``accepts``, a noun phrase for messages (``describe``), a JSON Schema."""

    must: str | None = None  # a whole predicate for messages ("list at least 2 ..."), replacing "be <describe>"

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def problem(self, value) -> str | None:
        """None if ``value`` is acceptable; "" for the declaration's message ('must be ..., got ...'); or a
        message of the constraint's own, where it can say more ('seed 3 is listed twice; ...')."""
        return None if self.accepts(value) else ""

    def describe(self) -> str:
        raise NotImplementedError

    def plural(self) -> str:
        """The phrase for a list of them ("positive integers")."""
        return self.describe()

    def schema(self) -> dict:
        return {}


class Interval(Constraint):
    """A number in a range: ``kind`` int (integers only) or float (any finite number, integers included).

    ``closed``: which ends belong to the range, "both", "left", "right" or "neither" (an open end at None
    is unbounded). ``text`` replaces the generated description ("an odds ratio >= 1").
    """

    def __init__(self, kind: type, low=None, high=None, closed: str = "both", text: str | None = None):
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval(kind={kind!r}, closed={closed!r}): kind is int or float, closed an end name")
        self.kind, self.low, self.high, self.closed, self.text = kind, low, high, closed, text

    def accepts(self, value) -> bool:
        if not (is_integer(value) if self.kind is int else is_number(value)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return self.high is None or value < self.high or (value == self.high and right)

    def _range(self) -> str:
        low, high = self.low, self.high
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if low is not None and high is not None:
            return f"in {'[' if left else '('}{_show(low)}, {_show(high)}{']' if right else ')'}"
        if low is not None:
            return f"{'>=' if left else '>'} {_show(low)}"
        if high is not None:
            return f"{'<=' if right else '<'} {_show(high)}"
        return ""

    def describe(self) -> str:
        return self.text or self._phrase(plural=False)

    def plural(self) -> str:
        return self._phrase(plural=True)

    def _phrase(self, plural: bool) -> str:
        integer = self.kind is int
        noun = ("integer" if integer else "number") + ("s" if plural else "")
        article = "" if plural else ("an " if integer else "a ")
        open_low = self.closed in ("right", "neither")
        if self.high is None and (
            (integer and self.low == 1 and not open_low) or (not integer and self.low == 0 and open_low)
        ):
            return ("" if plural else "a ") + "positive " + ("" if integer else "finite ") + noun
        if self.high is None and not integer:  # an unbounded side: say that infinity is refused
            return f"{article}finite {noun} {self._range()}".strip()
        return f"{article}{noun} {self._range()}".strip()

    def schema(self) -> dict:
        out: dict = {"type": "integer" if self.kind is int else "number"}
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None:
            out["minimum" if left else "exclusiveMinimum"] = self.low
        if self.high is not None:
            out["maximum" if right else "exclusiveMaximum"] = self.high
        return out


class Options(Constraint):
    """One of a fixed set of values (strings, as scikit-learn's ``StrOptions``)."""

    def __init__(self, values: Iterable, text: str | None = None):
        self.values, self.text = tuple(values), text

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return self.text or f"one of {list(self.values)}"

    def schema(self) -> dict:
        return {"enum": list(self.values)}


class Text(Constraint):
    """A string, optionally matching ``pattern`` (a full match) and not empty."""

    def __init__(self, text: str = "a string", pattern: str | None = None, plural: str | None = None):
        self.text, self.pattern, self._plural = text, pattern, plural

    def accepts(self, value) -> bool:
        return isinstance(value, str) and (self.pattern is None or re.fullmatch(self.pattern, value) is not None)

    def describe(self) -> str:
        return self.text

    def plural(self) -> str:
        return self._plural or "strings"

    def schema(self) -> dict:
        return {"type": "string", **({"pattern": f"^(?:{self.pattern})$"} if self.pattern else {})}


class Boolean(Constraint):
    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"

    def schema(self) -> dict:
        return {"type": "boolean"}


class ListOf(Constraint):
    """A list (or tuple) of items that each satisfy ``item``: at least ``min_items``, exactly ``length`` if given."""

    def __init__(
        self,
        item: Constraint,
        min_items: int = 1,
        length: int | None = None,
        unique: bool = False,
        text: str | None = None,
        must: str | None = None,
    ):
        self.item, self.min_items, self.length, self.unique, self.text, self.must = (
            item,
            min_items,
            length,
            unique,
            text,
            must,
        )

    def accepts(self, value) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) < self.min_items:
            return False
        if self.length is not None and len(value) != self.length:
            return False
        if self.unique and len({repr(v) for v in value}) != len(value):
            return False
        return all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        if self.text:
            return self.text
        if self.length == 2:
            return f"two {self.item.plural()}"
        return f"{'a non-empty' if self.min_items else 'a'} list of {self.item.plural()}"

    def schema(self) -> dict:
        out = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.length is not None:
            out["minItems"] = out["maxItems"] = self.length
        if self.unique:
            out["uniqueItems"] = True
        return out


class Table(Constraint):
    """A table (a dict) with string keys; ``values`` constrains each value where given."""

    def __init__(self, values: Constraint | None = None, text: str = "a table"):
        self.values, self.text = values, text

    def accepts(self, value) -> bool:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return False
        return self.values is None or all(self.values.accepts(v) for v in value.values())

    def describe(self) -> str:
        return self.text

    def schema(self) -> dict:
        return {"type": "object", **({"additionalProperties": self.values.schema()} if self.values else {})}


class AnyOf(Constraint):
    """Any of several constraints ("a count or a list of seeds"); None is one of them with ``NONE``."""

    def __init__(self, *options: Constraint, text: str | None = None, must: str | None = None):
        self.options, self.text, self.must = options, text, must

    def accepts(self, value) -> bool:
        return any(o.accepts(value) for o in self.options)

    def describe(self) -> str:
        return self.text or " or ".join(o.describe() for o in self.options)

    def schema(self) -> dict:
        schemas = [o.schema() for o in self.options if o is not NONE]  # TOML has no null: None is never written
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


class _NoneConstraint(Constraint):
    def accepts(self, value) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


#: None, for ``AnyOf(..., NONE)``: an optional setting of the Python API (a spec leaves the key out instead).
NONE = _NoneConstraint()


def optional(constraint: Constraint, text: str | None = None) -> AnyOf:
    """``constraint`` or None ("a positive integer or None")."""
    return AnyOf(constraint, NONE, text=text)


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared parameter: its name, constraint, default, one-line meaning and an example value.

    ``default_text`` says a default that is computed ("grid0, grid1, ... by place"); ``note`` follows the
    constraint in messages ("(0 gives cross-entropy)") and ``fix`` the value ("; 0 means none"); ``example`` (default: the default) is what the
    reference and ``losslab init`` show.
    """

    name: str
    constraint: Constraint
    default: Any = REQUIRED
    meaning: str = ""
    example: Any = REQUIRED
    default_text: str | None = None
    note: str = ""
    fix: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.default_text is None

    def requirement(self) -> str:
        """'be a positive integer' (or the constraint's own predicate), with the note."""
        must = self.constraint.must or f"be {self.constraint.describe()}"
        return must + (f" {self.note}" if self.note else "")

    def what(self) -> str:
        """What a value must be, for references: 'a finite number >= 0 (0 gives cross-entropy)'."""
        return self.constraint.describe() + (f" {self.note}" if self.note else "")

    def problem(self, value) -> str | None:
        """None if ``value`` is acceptable, else 'must be <what>, got <value>' (or the constraint's own message)."""
        own = self.constraint.problem(value)
        if own is None or own:
            return own
        return f"must {self.requirement()}, got {value!r}" + (f"; {self.fix}" if self.fix else "")

    def check(self, value, where: str | None = None):
        """Return ``value`` if acceptable; else raise ValueError '<name> must be ..., got ...' (or '<where>: must ...')."""
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"{where}: {problem}" if where else f"{self.name} {problem}")
        return value

    def default_value(self):
        """A fresh copy of the default (lists and tables are not shared)."""
        return copy.deepcopy(self.default)

    def show_example(self):
        return self.default if self.example is REQUIRED else self.example

    def schema(self) -> dict:
        """The JSON Schema of the parameter: its constraint's, with the meaning and default."""
        out = dict(self.constraint.schema())
        description = self.meaning + (f" Default: {self.default_text}." if self.default_text else "")
        if description:
            out["description"] = description.strip()
        if self.default is not REQUIRED and self.default is not None and self.default_text is None:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return out


def setting(
    constraint: Constraint,
    default: Any = REQUIRED,
    meaning: str = "",
    *,
    example: Any = REQUIRED,
    default_text: str | None = None,
    note: str = "",
    fix: str = "",
):
    """A dataclass field declared by a ``Param`` (named by the field): its default and its declaration, in one place."""
    param = Param("", constraint, default, meaning, example, default_text, note, fix)
    metadata = {_KEY: param}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def params_of(cls) -> dict[str, Param]:
    """The declared parameters of a dataclass (fields made by ``setting``), by field name, in field order."""
    return {
        f.name: dataclasses.replace(f.metadata[_KEY], name=f.name)
        for f in dataclasses.fields(cls)
        if _KEY in f.metadata
    }


def check_values(params: Mapping[str, Param], values: Mapping) -> None:
    """Raise ValueError '<name> must be ..., got ...' for the first value its declaration refuses (keys without a
    declaration pass)."""
    for name, value in values.items():
        if name in params:
            params[name].check(value)


def unknown_keys(values: Mapping, allowed: Iterable[str]) -> str | None:
    """'unknown key(s) [...]; valid keys: a, b' for keys of ``values`` not in ``allowed``, else None."""
    allowed = set(allowed)
    unknown = sorted(set(values) - allowed)
    if not unknown:
        return None
    return f"unknown key(s) {unknown}; valid keys: {', '.join(sorted(allowed))}"


def toml_value(value) -> str:
    """``value`` written as TOML (the reference, the starter spec): 0.1, "mlp", [100, 100], { k = 1.0 }."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else ("-inf" if value < 0 else "nan"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise ValueError(f"no TOML form for {value!r}")
