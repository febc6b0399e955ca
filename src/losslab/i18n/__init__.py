"""The report's languages: one message catalogue per language, and messages that can be rendered in any of them.

A catalogue is a TOML file beside this module, ``<lang>.toml`` (``en.toml``, ``zh.toml``): nested tables
whose dotted paths are the message ids (``[claim.C1] title = "..."`` is the id ``claim.C1.title``) and
whose strings are ``str.format`` templates with named placeholders (``{threshold}``). Placeholders carry
no format spec: numbers are formatted in code, once, and the same text goes into every language. Each
catalogue has a ``[meta]`` table (the language's name, its HTML ``lang`` code, whether its figures need
a CJK font) and, in languages other than English, ``[rule.*]`` tables: translations of the verdict rules,
whose English text is the docstring of the function that applies the rule (see ``Rule``).

``Message(id, **args)`` is a ``str`` whose value is the English text, so code and tests that read
English keep working unchanged, and which remembers its id and arguments, so the report can render it
again in another language (``render(value, lang)``). Arguments may themselves be messages (rendered in
the same language), lists (joined with the language's list separator) or plain values (``str()``).

This package imports nothing else from losslab: every layer (theory, analysis, report, cli) may use it.

To add a language: copy ``en.toml`` to ``<code>.toml``, translate every string (keep the placeholders),
fill in ``[meta]``, translate the rules under ``[rule.*]`` as ``zh.toml`` does, and run the catalogue
tests (``tests/test_i18n.py``), which list anything missing.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
SOURCE_LANGUAGE = "en"
#: Every language with a catalogue, English first.
LANGUAGES: tuple[str, ...] = tuple(
    sorted((p.stem for p in HERE.glob("*.toml")), key=lambda code: (code != SOURCE_LANGUAGE, code))
)
#: Environment variables that name the user's locale, in POSIX order of precedence.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def check_language(lang: str, flag: str = "lang") -> str:
    """``lang`` if it is a language with a catalogue, else a ValueError naming ``flag`` and the valid values."""
    if lang not in LANGUAGES:
        raise ValueError(f"{flag} must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


def default_language(environ: Mapping[str, str] | None = None) -> str:
    """The language of the user's locale: the first of LC_ALL, LC_MESSAGES, LANG that is set decides;
    a locale starting with a language code that has a catalogue (``zh_CN.UTF-8`` -> ``zh``) gives that
    language, anything else English."""
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "")
        if value:
            code = value.split("_")[0].split(".")[0].split("@")[0].lower()
            return code if code in LANGUAGES else SOURCE_LANGUAGE
    return SOURCE_LANGUAGE


def locale_variable(environ: Mapping[str, str] | None = None) -> str:
    """The variable that decided ``default_language``, as NAME=value (or 'no locale variable')."""
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        if environ.get(name, ""):
            return f"{name}={environ[name]}"
    return "no locale variable"


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@cache
def catalogue(lang: str) -> dict[str, object]:
    """Every entry of a language's catalogue, by dotted id (``meta.*`` and ``rule.*`` included)."""
    check_language(lang)
    with open(HERE / f"{lang}.toml", "rb") as handle:
        return _flatten(tomllib.load(handle))


@cache
def messages(lang: str) -> dict[str, str]:
    """The messages of a language: its catalogue without ``meta.*`` and ``rule.*``."""
    return {k: v for k, v in catalogue(lang).items() if not k.startswith(("meta.", "rule."))}


def meta(lang: str, key: str):
    return catalogue(lang)[f"meta.{key}"]


@cache
def placeholders(text: str) -> frozenset[str]:
    """The named placeholders of a template (``'{a} and {b}'`` -> ``{'a', 'b'}``)."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(text) if field is not None)


class _Localised(str):
    """A ``str`` holding its English text that renders itself in another language (``translate``)."""

    def render(self, lang: str) -> str:
        return str(self) if lang == SOURCE_LANGUAGE else self.translate(lang)

    def translate(self, lang: str) -> str:
        raise NotImplementedError


class Message(_Localised):
    """A catalogue message: a ``str`` holding its English text that can be rendered in any language.

    ``Message("claim.C1.title")``, ``Message("ledger.summary", holds="28", ...)``. The id must exist in
    the English catalogue and the arguments must be exactly its placeholders (a mistake fails here, at
    once, not in a report). Slicing, ``+`` or an f-string turn it into a plain English ``str``: build
    sentences from messages and arguments instead.
    """

    def __new__(cls, id: str, /, **args):
        template = messages(SOURCE_LANGUAGE).get(id)
        if template is None:
            raise KeyError(f"message {id!r} is not in the English catalogue {HERE / 'en.toml'}")
        if set(args) != placeholders(template):
            raise TypeError(f"message {id!r} takes the arguments {sorted(placeholders(template))}, got {sorted(args)}")
        self = super().__new__(cls, _format(template, args, SOURCE_LANGUAGE))
        self.id = id
        self.args = args
        return self

    def translate(self, lang: str) -> str:
        return _format(messages(lang).get(self.id, messages(SOURCE_LANGUAGE)[self.id]), self.args, lang)

    def __reduce__(self):  # copy, deepcopy (dataclasses.asdict) and pickle keep the id and arguments
        return (_rebuild, (type(self), self.id, self.args))


def _rebuild(cls, id, args):
    return cls(id, **args)


class Rule(_Localised):
    """The rule behind a verdict: in English the docstrings of the deciding function and its helpers
    (what the code does, kept beside the code); in another language the catalogue's ``rule.<name>.text``
    for each of them. ``rule.<name>.source`` is the fingerprint (``fingerprint``) of the docstring that
    was translated, so a test notices when a docstring changes and its translation does not.

    Docstrings and translations alike may carry ``{name}`` placeholders for the constants that decide the
    rule (a margin, a seed count): they are filled from ``constants`` when the rule is shown, so changing a
    constant changes every printed rule in every language (the fingerprint is of the unfilled docstring).
    """

    def __new__(cls, functions=(), parts=None, constants=None):
        parts = tuple((f.__name__, inspect.getdoc(f) or "") for f in functions) if parts is None else tuple(parts)
        constants = dict(constants or {})
        self = super().__new__(cls, "\n\n".join(_fill(doc, constants) for _, doc in parts if doc))
        self.parts = parts
        self.constants = constants
        return self

    def translate(self, lang: str) -> str:
        entries = catalogue(lang)
        return "\n\n".join(
            _fill(entries.get(f"rule.{name}.text", doc), self.constants) for name, doc in self.parts if doc
        )

    def __reduce__(self):
        return (_rebuild_rule, (self.parts, self.constants))


def _fill(text: str, constants: dict) -> str:
    """A rule text with its constants filled in (a text without placeholders is returned as it is)."""
    return text.format(**constants) if constants and "{" in text else text


def _rebuild_rule(parts, constants=None):
    return Rule(parts=parts, constants=constants)


def fingerprint(text: str) -> str:
    """A short fingerprint of an English source text (a rule's docstring), recorded beside its translation."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:12]


class Listing(list):
    """Items shown joined by a catalogue separator other than the list separator (``list.semicolon``)."""

    def __init__(self, items=(), separator: str = "list.semicolon"):
        super().__init__(items)
        self.separator = separator


def render(value, lang: str):
    """``value`` in ``lang``: a Message or Rule rendered, a list or tuple joined with the language's list
    separator (a ``Listing`` with its own), anything else unchanged."""
    if isinstance(value, (Message, Rule)):
        return value.render(lang)
    if isinstance(value, (list, tuple)):
        separator = value.separator if isinstance(value, Listing) else "list.separator"
        return messages(lang)[separator].join(str(render(v, lang)) for v in value)
    return value


def _format(template: str, args: dict, lang: str) -> str:
    return template.format(**{k: render(v, lang) for k, v in args.items()})


def translator(lang: str):
    """``t(id, **args)``: the message ``id`` rendered in ``lang`` at once (for figure labels)."""
    check_language(lang)

    def t(id: str, /, **args) -> str:
        return Message(id, **args).render(lang)

    return t


__all__ = [
    "LANGUAGES",
    "Listing",
    "Message",
    "Rule",
    "catalogue",
    "check_language",
    "default_language",
    "fingerprint",
    "messages",
    "meta",
    "placeholders",
    "render",
    "translator",
]
