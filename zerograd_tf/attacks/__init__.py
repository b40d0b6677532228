"""Evaluation attacks of the AutoAttack family, natively in TensorFlow.

- `apgd_attack.apgd`: Auto-PGD (Croce and Hein, 2020) on any objective; with the
  cross-entropy it is APGD-CE, with the targeted DLR loss APGD-T.
- `square_attack.square`: the black-box Square attack (Andriushchenko et al., 2020).
- `losses`: the DLR, targeted DLR, margin and cross-entropy losses on logits.

`zerograd_tf.evaluate_robustness(..., attack="autoattack")` composes them
(APGD-CE, APGD-T, Square), each on the examples still robust after the
previous ones.
"""

from zerograd_tf.attacks import losses
from zerograd_tf.attacks.apgd_attack import apgd
from zerograd_tf.attacks.square_attack import square

__all__ = ["apgd", "losses", "square"]
