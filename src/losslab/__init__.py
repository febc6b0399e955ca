"""losslab: measure how a classifier's loss function shapes its training.

Layers (data flows one way): core -> theory, analysis, data, models -> train -> experiments -> report, explore -> cli.

The plug-in API is exported lazily (``losslab.register_loss`` imports torch on first use, not
``import losslab``), so the command line's ``--help`` stays fast.
"""

__version__ = "0.1.0"

# name -> module that defines it; imported on first access (PEP 562).
_LAZY = {
    "register_loss": "losslab.core.losses",
    "register_dataset": "losslab.data",
    "check_loss": "losslab.analysis.check",
    "check_dataset": "losslab.data",
    "load_dataset": "losslab.data",
    "import_plugin": "losslab.plugins",
    "register_model": "losslab.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'losslab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})
