"""The interactive explorer: one self-contained HTML page (``losslab explore``).

Three sections: the gradient explorer (each loss's value and logit-gradient norm against the margin,
computed in the page from the closed forms of ``losslab.core.losses``), Nielsen's single sigmoid
neuron trained live with squared error and cross-entropy, and a scrubber over a real saturation
experiment's measurements. Every setting lives in the URL fragment, so a link restores the state.
Its words are the message catalogues' (``lang``: English or Simplified Chinese), like the report's.
Like the report layer it reads result folders and never trains.
"""

from losslab.explore.page import FILENAME, build_explorer, measured_data, write_explorer

__all__ = ["FILENAME", "build_explorer", "measured_data", "write_explorer"]
