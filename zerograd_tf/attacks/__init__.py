"""Every attack of the package, natively in TensorFlow, one per module.

Training perturbations (single step unless said otherwise):

- `fgsm` (`fgsm_attack`): FGSM and FGSM-RS;
- `zerograd` (`zerograd_attack`): ZeroGrad, FGSM-RS with the small
  input-gradient elements zeroed;
- `multigrad` (`multigrad_attack`): MultiGrad, the signs that agree across
  random starts;
- `n_fgsm` (`n_fgsm_attack`): N-FGSM, a step from strong noise;
- `pgd` (`pgd_attack`): multi-step PGD with restarts (training and
  evaluation).

Evaluation attacks of the AutoAttack family:

- `apgd` (`apgd_attack`): Auto-PGD (Croce and Hein, 2020); with the
  cross-entropy APGD-CE, with the targeted DLR loss APGD-T;
- `square` (`square_attack`): the black-box Square attack (Andriushchenko
  et al., 2020);
- `losses`: the DLR, targeted DLR, margin and cross-entropy losses on logits.

Every attack is a pure function `attack(objective, x, y, epsilon, ...)`
returning `(delta, info)`: the perturbation (held constant) and a dict of
per-example statistics. The pieces they share (seeds, noise, projection,
input gradients) are in `ops`. `zerograd_tf.evaluate_robustness` composes the
evaluation attacks.
"""

from zerograd_tf.attacks import losses, ops
from zerograd_tf.attacks.apgd_attack import apgd
from zerograd_tf.attacks.fgsm_attack import fgsm
from zerograd_tf.attacks.multigrad_attack import multigrad
from zerograd_tf.attacks.n_fgsm_attack import n_fgsm
from zerograd_tf.attacks.pgd_attack import pgd
from zerograd_tf.attacks.square_attack import square
from zerograd_tf.attacks.zerograd_attack import zerograd

__all__ = ["apgd", "fgsm", "losses", "multigrad", "n_fgsm", "ops", "pgd", "square",
           "zerograd"]
