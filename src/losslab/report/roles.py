"""What each grid role adds to the report: its tables and figures, declared once.

Every grid is shown the same way whatever its role (``losslab.report.grids``); a role (the spec key ``role``,
``losslab.experiments.spec.ROLES``) adds the views that ask one of the article's questions. A view is declared
with the roles it reads and two functions: its tables (``Evidence -> list of table dicts``) and its figures
(``Evidence, lang -> {name: Figure}``). The report draws every view whose roles are in its results, in the
order declared; a new role's view is one more ``ROLE_VIEWS.register`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from losslab.registry import Registry
from losslab.report import result_figures as RF
from losslab.report import tables as T
from losslab.report.verdicts import Evidence


@dataclass(frozen=True)
class RoleView:
    """The tables and figures a group of roles adds to the report (``caption``: each figure's caption id)."""

    roles: tuple[str, ...]
    tables: Callable[[Evidence], list[dict]] = lambda ev: []
    figures: Callable[[Evidence, str], dict] = lambda ev, lang: {}
    captions: tuple[tuple[str, str], ...] = ()

    def present(self, ev: Evidence) -> bool:
        return any(g.role in self.roles for g in ev.grids)


def _saturation_figures(ev: Evidence, lang: str) -> dict:
    return {
        "saturation-curves": RF.saturation_curves(ev.role_rows("saturation-binary", "saturation-softmax"), lang=lang)
    }


def _comparison_figures(ev: Evidence, lang: str) -> dict:
    grids = [g for g in ev.role_grids("loss-comparison") if any(c.comparisons for c in g.conditions)]
    return {"comparison": RF.baseline_differences(grids, lang=lang)} if grids else {}


#: Every role's view, in the order the report shows them.
ROLE_VIEWS: Registry[RoleView] = Registry("role view", "role views", plugins=False)
ROLE_VIEWS.register(
    "saturation",
    RoleView(
        ("saturation-binary", "saturation-softmax"),
        tables=T.saturation_table,
        figures=_saturation_figures,
        captions=(("saturation-curves", "caption.saturation_curves"),),
    ),
)
ROLE_VIEWS.register(
    "loss-comparison",
    RoleView(
        ("loss-comparison",),
        tables=T.lr_ratio_table,
        figures=_comparison_figures,
        captions=(("comparison", "caption.comparison"),),
    ),
)
ROLE_VIEWS.register(
    "many-classes",
    RoleView(
        ("many-classes",),
        figures=lambda ev, lang: {"classes": RF.classes_curve(ev.role_grids("many-classes"), lang=lang)},
        captions=(("classes", "caption.classes"),),
    ),
)
ROLE_VIEWS.register(
    "warm-start",
    RoleView(
        ("warm-start", "from-scratch"),
        figures=lambda ev, lang: {
            "warmstart": RF.warmstart_curves(ev.role_rows("warm-start", "from-scratch"), lang=lang)
        },
        captions=(("warmstart", "caption.warmstart"),),
    ),
)
ROLE_VIEWS.register(
    "mnist1d-reference",
    RoleView(("reference-linear", "reference-mlp", "reference-cnn"), tables=T.reproduction_tables),
)


def views(ev: Evidence) -> list[RoleView]:
    """The views whose roles are in these results."""
    return [view for view in ROLE_VIEWS.values() if view.present(ev)]
