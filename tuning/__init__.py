"""KerasTuner search over ZeroGrad's quantile and step size (`zerograd-tune`)."""

from zerograd_tf.tuning.hypermodel import ZeroGradHyperModel
from zerograd_tf.tuning.search import search

__all__ = ["ZeroGradHyperModel", "search"]
