"""KerasTuner search over ZeroGrad's quantile and step size (`zerograd-tune`)."""

from tuning.hypermodel import ZeroGradHyperModel
from tuning.search import search

__all__ = ["ZeroGradHyperModel", "search"]
