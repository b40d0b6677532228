"""Deprecated: the training perturbations moved to `zerograd_tf.attacks`.

This module keeps the old names and signatures (`return_info=False` returns
`delta` alone) for one release, with a `DeprecationWarning` on import.
`zerograd_tf.attacks.fgsm` and the others return `(delta, info)`.
"""

import warnings

from zerograd_tf import attacks as _attacks
from zerograd_tf.attacks.ops import as_seed, loss_and_gradient, project, uniform_noise

__all__ = ["as_seed", "fgsm", "loss_and_gradient", "multigrad", "n_fgsm", "pgd",
           "project", "uniform_noise", "zerograd"]

warnings.warn(
    "zerograd_tf.perturbations is deprecated and will be removed in the next release: "
    "use zerograd_tf.attacks (its attacks return (delta, info)).",
    DeprecationWarning, stacklevel=2)


def _old_signature(attack):
    def call(*args, return_info=False, **kwargs):
        delta, info = attack(*args, **kwargs)
        return (delta, info) if return_info else delta

    call.__name__ = attack.__name__
    call.__doc__ = (f"Deprecated: `zerograd_tf.attacks.{attack.__name__}`, returning "
                    "`delta` alone unless `return_info`.")
    return call


fgsm = _old_signature(_attacks.fgsm)
zerograd = _old_signature(_attacks.zerograd)
multigrad = _old_signature(_attacks.multigrad)
n_fgsm = _old_signature(_attacks.n_fgsm)
pgd = _old_signature(_attacks.pgd)
