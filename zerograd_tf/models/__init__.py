"""Keras models that train on adversarial examples, one method per module.

- `base.AdversarialModel`: construction, the method's hooks (`perturb`,
  `regularization`), saving; built from `hyperparameters.Hyperparameters`
  (variables read when the step runs, alpha as a multiple of epsilon),
  `trainer.AdversarialTrainer` (`train_step`, `test_step`, `fit`) and
  `replica_xla.ReplicaXLA` (XLA per replica under `tf.distribute`).
- `fgsm.FGSMModel` (FGSM, FGSM-RS), `zerograd.ZeroGradModel`,
  `multigrad.MultiGradModel`, `n_fgsm.NFGSMModel`, `pgd.PGDModel`,
  `clean.CleanModel`, `gradalign.GradAlignModel`,
  `zerograd_n_fgsm.ZeroGradNFGSMModel` (ZeroGrad's mask on N-FGSM).
"""

from zerograd_tf.models.base import AdversarialModel
from zerograd_tf.models.clean import CleanModel
from zerograd_tf.models.fgsm import FGSMModel
from zerograd_tf.models.gradalign import GradAlignModel
from zerograd_tf.models.multigrad import MultiGradModel
from zerograd_tf.models.n_fgsm import NFGSMModel
from zerograd_tf.models.pgd import PGDModel
from zerograd_tf.models.zerograd import ZeroGradModel
from zerograd_tf.models.zerograd_n_fgsm import ZeroGradNFGSMModel

__all__ = [
    "AdversarialModel",
    "CleanModel",
    "FGSMModel",
    "GradAlignModel",
    "MultiGradModel",
    "NFGSMModel",
    "PGDModel",
    "ZeroGradModel",
    "ZeroGradNFGSMModel",
]
