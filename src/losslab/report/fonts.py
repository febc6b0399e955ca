"""Fonts for the figures' languages: a CJK font, found at run time, so that matplotlib draws Chinese labels.

English figures use matplotlib's defaults, untouched. For a language whose catalogue says
``needs_cjk_font`` (Chinese), ``figure_fonts(lang)`` sets the font family to DejaVu Sans (matplotlib's
default, for Latin letters, digits and symbols) followed by a CJK font, and matplotlib falls back to the
CJK font glyph by glyph. The CJK font is, in order:

1. the font file named by ``$LOSSLAB_CJK_FONT`` (``.otf``, ``.ttf`` or ``.ttc``), if set;
2. the first installed font, in the order of ``PREFERRED`` (Noto Sans CJK SC from Debian's
   ``fonts-noto-cjk``, Source Han Sans, Microsoft YaHei, PingFang SC, WenQuanYi, ...), then any other
   font whose name marks it as CJK, that has a glyph for every CJK character of the language's catalogue;
3. the same search after registering the system's CJK font files with matplotlib: its font cache may
   have been built before the font was installed.

Where none is found, ``require(lang)`` raises a one-line ``FontError`` saying how to install one, before
anything is drawn, rather than letting matplotlib draw boxes. No font file ships with losslab.
"""

from __future__ import annotations

import contextlib
import os
import re
from functools import cache
from pathlib import Path

from losslab.i18n import check_language, messages, meta

ENVIRONMENT_VARIABLE = "LOSSLAB_CJK_FONT"
LATIN_FONT = "DejaVu Sans"  # matplotlib's default family: digits, Latin letters and the symbols in labels
#: CJK families, best first: Simplified Chinese faces of the common free and system fonts, then others.
PREFERRED = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Sarasa Gothic SC",
    "SimHei",
    "Noto Serif CJK SC",
    "Source Han Serif SC",
    "Noto Serif SC",
    "SimSun",
    "AR PL UMing CN",
    "Droid Sans Fallback",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
)
#: Family names that mark a font as CJK (for fonts not in PREFERRED).
CJK_NAME = re.compile(r"CJK|Han |Hei|Song|Kai|Ming|Gothic|YaHei|WenQuanYi|Fallback| SC$| CN$", re.IGNORECASE)
#: File names of CJK fonts, for registering system fonts that matplotlib's cache does not list yet.
CJK_FILE = re.compile(
    r"cjk|sourcehan|wqy|wenquanyi|msyh|yahei|pingfang|simhei|simsun|hiragino|sarasa|droidsansfallback|"
    r"notosanssc|notoserifsc|uming|ukai",
    re.IGNORECASE,
)
INSTALL_HINT = (
    "install one (Debian/Ubuntu: apt-get install fonts-noto-cjk; Fedora: dnf install google-noto-sans-cjk-fonts; "
    f"macOS and Windows ship one) or set {ENVIRONMENT_VARIABLE} to a font file (.otf, .ttf or .ttc) with Chinese glyphs"
)


class FontError(ValueError):
    """No font can draw a language's figure labels (a ValueError: the CLI prints it as one line, exit 2)."""


def needs_cjk(lang: str) -> bool:
    return bool(meta(check_language(lang), "needs_cjk_font"))


#: Unicode blocks a CJK font must cover: radicals, CJK punctuation, kana, ideographs, fullwidth forms.
CJK_BLOCKS = ((0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x2FA1F))


@cache
def _cjk_characters(lang: str) -> frozenset[str]:
    """Every character of the language's messages in a CJK block (the rest DejaVu Sans draws)."""
    text = "".join(messages(lang).values())
    return frozenset(c for c in text if any(lo <= ord(c) <= hi for lo, hi in CJK_BLOCKS))


def _missing(path: str, lang: str) -> list[str]:
    """The language's CJK characters that the font file at ``path`` has no glyph for."""
    from matplotlib import ft2font

    try:
        charmap = ft2font.FT2Font(path).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return sorted(_cjk_characters(lang))
    return sorted(c for c in _cjk_characters(lang) if ord(c) not in charmap)


def _search(lang: str, entries) -> str | None:
    by_name: dict[str, list[str]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry.fname)
    names = [n for n in PREFERRED if n in by_name]
    names += sorted(n for n in by_name if n not in PREFERRED and CJK_NAME.search(n))
    for name in names:
        if any(not _missing(path, lang) for path in by_name[name]):
            return name
    return None


def _register(path: str) -> list[str]:
    """Add a font file to matplotlib's font list (this process only); returns the family names it brings."""
    from matplotlib import font_manager

    before = len(font_manager.fontManager.ttflist)
    font_manager.fontManager.addfont(path)
    return [e.name for e in font_manager.fontManager.ttflist[before:]]


@cache
def _find(lang: str, named_file: str) -> str | None:
    from matplotlib import font_manager

    if named_file:
        path = Path(named_file).expanduser()
        if not path.is_file():
            raise FontError(f"{ENVIRONMENT_VARIABLE}={named_file}: no such font file; {INSTALL_HINT}")
        try:
            names = _register(str(path))
        except (OSError, RuntimeError, ValueError) as exc:
            raise FontError(f"{ENVIRONMENT_VARIABLE}={named_file}: not a font matplotlib can read ({exc})") from None
        missing = _missing(str(path), lang)
        if missing or not names:
            shown = "".join(missing[:5])
            raise FontError(
                f"{ENVIRONMENT_VARIABLE}={named_file}: the font has no glyph for {shown} and {len(missing) - 5} more "
                f"characters of the {meta(lang, 'name')} report; choose a font with Simplified Chinese glyphs"
                if len(missing) > 5
                else f"{ENVIRONMENT_VARIABLE}={named_file}: the font has no glyph for {shown}; choose a font with "
                "Simplified Chinese glyphs"
            )
        return next((n for n in PREFERRED if n in names), next((n for n in names if CJK_NAME.search(n)), names[0]))
    found = _search(lang, font_manager.fontManager.ttflist)
    if found is None:
        # matplotlib's font cache may predate the font's installation: register the system's CJK files and retry.
        for path in font_manager.findSystemFonts():
            if CJK_FILE.search(Path(path).name):
                with contextlib.suppress(OSError, RuntimeError, ValueError):
                    _register(path)
        found = _search(lang, font_manager.fontManager.ttflist)
    return found


def find_cjk_font(lang: str = "zh") -> str | None:
    """The family name of a font that draws every CJK character of ``lang``'s catalogue, or None.

    ``$LOSSLAB_CJK_FONT`` (a font file) comes first; a file that is missing or lacks glyphs is a FontError."""
    return _find(lang, os.environ.get(ENVIRONMENT_VARIABLE, ""))


def require(lang: str) -> None:
    """Nothing for a language that needs no CJK font; else fail with a one-line FontError unless one is found."""
    if needs_cjk(lang) and find_cjk_font(lang) is None:
        raise FontError(
            f"--lang {lang}: the {meta(lang, 'name')} figures need a CJK font and none is installed; {INSTALL_HINT}"
        )


@contextlib.contextmanager
def figure_fonts(lang: str):
    """Within this block, matplotlib text uses the fonts of ``lang`` (no change for English)."""
    if not needs_cjk(lang):
        yield
        return
    require(lang)
    import matplotlib

    with matplotlib.rc_context({"font.family": [LATIN_FONT, find_cjk_font(lang)]}):
        yield
