"""Shared test settings: float64 references, hypothesis profile, the shared data folder."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("ci")

# The checksummed MNIST / Fashion-MNIST files live beside the checkout; tests that need them skip without.
SHARED_DATA = Path(os.environ.get("LOSSLAB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist" / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"MNIST files not found under {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_plan_cache(tmp_path_factory):
    # Execution plans measured by tests go to a throwaway cache, not the user's ~/.cache/losslab.
    os.environ["LOSSLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("losslab-cache"))


@pytest.fixture
def shared_data_or_none() -> Path | None:
    """The MNIST folder when it is beside the checkout, else None (tests then skip the cells that need it)."""
    return SHARED_DATA if (SHARED_DATA / "mnist" / "train-labels-idx1-ubyte.gz").exists() else None


@pytest.fixture
def clean_registries():
    """After the test, every registry (losses, datasets, models, figures) and the imported plugins are as they
    were before (tests register plugin losses under the same names from different files)."""
    import sys

    import losslab.core  # noqa: F401 - every registry exists before the snapshot
    import losslab.data  # noqa: F401
    import losslab.models  # noqa: F401
    import losslab.report.figures  # noqa: F401
    from losslab import plugins, registry
    from losslab.experiments import spec_plugins

    saved = registry.snapshot_all()
    imported, installed, modules = dict(plugins.PLUGINS), set(spec_plugins._INSTALLED), set(sys.modules)
    yield
    registry.restore_all(saved)
    plugins.PLUGINS.clear()
    plugins.PLUGINS.update(imported)
    spec_plugins._INSTALLED.clear()
    spec_plugins._INSTALLED.update(installed)
    for name in set(sys.modules) - modules:
        if name.startswith("losslab_plugin_"):
            del sys.modules[name]


@pytest.fixture(autouse=True)
def _english_locale(monkeypatch):
    # The CLI's --lang defaults to the locale's language: tests that read English output run in an English one.
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
