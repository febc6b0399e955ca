"""losslab: measure how a classifier's loss function shapes its training.

Layers (data flows one way): core -> theory, analysis -> train -> experiments -> report -> cli.
"""

__version__ = "0.1.0"
