"""The models layer: models as populations (M members with parameters stacked along a leading member axis).

Modules, one job each: ``protocol`` (``PopulationModel``, what the trainer needs of a model; ``LogitGrad``;
``ModelEntry``), ``mlp`` (the MLP with its hand-written backward) and ``matmul`` (its batched products),
``cnn`` (the convnet for 28x28 images, grouped convolutions: the GPU's), ``cnn_population`` and ``cnn1d_population``
(the image CNN and the MNIST-1D CNN as batched products with a hand-written backward: the CPU's), ``flat`` (tensors
back to back in one buffer), ``module_population`` (any ``torch.nn.Module`` as a population,
through ``torch.func``), ``mnist1d`` (the MNIST-1D reference models) and ``registry`` (``MODELS``,
``register_model``, ``build_model``). Nothing here imports from the trainer (``losslab.train``).
"""

from losslab.models.cnn import CNN
from losslab.models.mlp import MLP, mlp_widths
from losslab.models.module_population import ModulePopulation
from losslab.models.protocol import LogitGrad, ModelEntry, PopulationModel
from losslab.models.registry import MODELS, build_model, get_model, register_model

__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "LogitGrad",
    "ModelEntry",
    "ModulePopulation",
    "PopulationModel",
    "build_model",
    "get_model",
    "mlp_widths",
    "register_model",
]
