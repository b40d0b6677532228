"""zerograd-tf: fast single-step adversarial training without catastrophic
overfitting, for Keras 3 and TensorFlow.

Public API:

- Models: `AdversarialModel`, `CleanModel`, `FGSMModel`, `ZeroGradModel`, `MultiGradModel`,
  `NFGSMModel`, `PGDModel`, `GradAlignModel` (`keras.Model` subclasses).
- Perturbations: `fgsm`, `zerograd`, `multigrad`, `n_fgsm`, `pgd`.
- `per_example_quantile`; `evaluate_robustness` with PGD, APGD-CE, APGD-T,
  Square and AutoAttack (`zerograd_tf.attacks` for the attacks themselves).
- Learning-rate schedules: `CyclicLR`, `PiecewiseLR`.
- Callbacks: `CatastrophicOverfittingMonitor`, `AdversarialDiagnostics`
  (and `zerograd_tf.callbacks` for all of them).
"""

from zerograd_tf import _env  # noqa: F401  (sets KERAS_BACKEND first)
from zerograd_tf.callbacks import (
    AdversarialDiagnostics,
    AutoQuantile,
    CatastrophicOverfittingMonitor,
)
from zerograd_tf.evaluation import ATTACKS, evaluate_robustness
from zerograd_tf.models import (
    AdversarialModel,
    CleanModel,
    FGSMModel,
    GradAlignModel,
    MultiGradModel,
    NFGSMModel,
    PGDModel,
    ZeroGradModel,
)
from zerograd_tf.objectives import crossentropy, model_objective
from zerograd_tf.perturbations import fgsm, multigrad, n_fgsm, pgd, zerograd
from zerograd_tf.quantile import QUANTILE_METHODS, per_example_quantile
from zerograd_tf.schedules import CyclicLR, PiecewiseLR

__version__ = "0.1.0"

__all__ = [
    "ATTACKS",
    "AdversarialDiagnostics",
    "AdversarialModel",
    "AutoQuantile",
    "CatastrophicOverfittingMonitor",
    "CleanModel",
    "CyclicLR",
    "FGSMModel",
    "GradAlignModel",
    "MultiGradModel",
    "NFGSMModel",
    "PGDModel",
    "PiecewiseLR",
    "QUANTILE_METHODS",
    "ZeroGradModel",
    "crossentropy",
    "evaluate_robustness",
    "fgsm",
    "model_objective",
    "multigrad",
    "n_fgsm",
    "per_example_quantile",
    "pgd",
    "zerograd",
]
