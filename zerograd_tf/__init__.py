"""zerograd-tf: fast single-step adversarial training for Keras 3 and
TensorFlow, with the remedies for catastrophic overfitting (ZeroGrad,
MultiGrad, N-FGSM, GradAlign) and the tools that show whether they worked.

Public API:

- Models: `AdversarialModel`, `CleanModel`, `FGSMModel`, `ZeroGradModel`, `MultiGradModel`,
  `NFGSMModel`, `ZeroGradNFGSMModel`, `PGDModel`, `GradAlignModel`
  (`keras.Model` subclasses).
- Attacks (`zerograd_tf.attacks`, each returning `(delta, info)`): `fgsm`,
  `zerograd`, `multigrad`, `n_fgsm`, `pgd`.
- `per_example_quantile`; `evaluate_robustness` with PGD, APGD-CE, APGD-T,
  Square and AutoAttack (`zerograd_tf.attacks` for the attacks themselves).
- Learning-rate schedules: `CyclicLR`, `PiecewiseLR`.
- Callbacks: `CatastrophicOverfittingMonitor`, `AdversarialDiagnostics`
  (and `zerograd_tf.callbacks` for all of them).
"""

import importlib as _importlib

from zerograd_tf import _programs

__version__ = "0.2.0"

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
    "ZeroGradNFGSMModel",
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

# The submodule that owns each public name of `__all__`: what the eager
# imports below import, and what lazy mode's `__getattr__` imports on first
# access.
_OWNERS = {
    "ATTACKS": "evaluation",
    "evaluate_robustness": "evaluation",
    "AdversarialDiagnostics": "callbacks",
    "AutoQuantile": "callbacks",
    "CatastrophicOverfittingMonitor": "callbacks",
    "AdversarialModel": "models",
    "CleanModel": "models",
    "FGSMModel": "models",
    "GradAlignModel": "models",
    "MultiGradModel": "models",
    "NFGSMModel": "models",
    "PGDModel": "models",
    "ZeroGradModel": "models",
    "ZeroGradNFGSMModel": "models",
    "crossentropy": "objectives",
    "model_objective": "objectives",
    "fgsm": "attacks",
    "multigrad": "attacks",
    "n_fgsm": "attacks",
    "pgd": "attacks",
    "zerograd": "attacks",
    "QUANTILE_METHODS": "quantile",
    "per_example_quantile": "quantile",
    "CyclicLR": "schedules",
    "PiecewiseLR": "schedules",
}
# Submodules that lazy mode imports on first access as attributes of the
# package (`zerograd_tf.callbacks`), as the eager import leaves them; the
# light ones (no TensorFlow) without importing TensorFlow first.
_SUBMODULES = ("architectures", "attacks", "batching", "callbacks", "datasets", "distribution",
               "evaluation", "layers", "models", "monitoring", "objectives",
               "quantile", "schedules", "validation")
_LIGHT_SUBMODULES = ("downloads", "io_utils", "tfds_data")


if _programs.started_as_program():
    # One of the package's programs: nothing is imported until it is used,
    # so --help and option errors answer without TensorFlow. After parsing,
    # a program calls `_programs.load_library()`, which imports (and
    # registers with Keras) everything, as the eager import below does.

    def __getattr__(name):
        """Imports a public name or submodule on first access (lazy mode only).

        Keras (and its backend check) comes first, through
        `zerograd_tf._env`, as in the eager import. The value is then kept
        in the package, so this runs once per name.
        """
        if name in _LIGHT_SUBMODULES:
            return _importlib.import_module(f"zerograd_tf.{name}")
        if name not in _OWNERS and name not in _SUBMODULES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        _importlib.import_module("zerograd_tf._env")
        if name in _OWNERS:
            value = getattr(_importlib.import_module(f"zerograd_tf.{_OWNERS[name]}"), name)
        else:
            value = _importlib.import_module(f"zerograd_tf.{name}")
        globals()[name] = value
        return value

    def __dir__():
        """The package's names, with those not imported yet."""
        return sorted(set(globals()) | set(_OWNERS) | set(_SUBMODULES)
                      | set(_LIGHT_SUBMODULES))

else:
    # A library user: everything at once, which also registers the Keras
    # classes that `keras.models.load_model` needs ("import zerograd_tf,
    # keras; keras.models.load_model(path)" works).
    from zerograd_tf import _env  # noqa: F401  (checks the Keras backend first)
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
        ZeroGradNFGSMModel,
    )
    from zerograd_tf.objectives import crossentropy, model_objective
    from zerograd_tf.attacks import fgsm, multigrad, n_fgsm, pgd, zerograd
    from zerograd_tf.quantile import QUANTILE_METHODS, per_example_quantile
    from zerograd_tf.schedules import CyclicLR, PiecewiseLR
