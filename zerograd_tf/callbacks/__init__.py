"""Keras callbacks for adversarial training runs, one per module.

- `history_writer.HistoryWriter`: the epoch logs in a JSON file, resumably.
- `epsilon_warmup.EpsilonWarmup`: a linear epsilon ramp.
- `co_monitor.CatastrophicOverfittingMonitor`: detects catastrophic
  overfitting within an epoch and warns, stops or adapts.
- `auto_quantile.AutoQuantile`: the monitor of `ZeroGradModel(quantile="auto")`.
- `diagnostics.AdversarialDiagnostics`: the paper's explanatory statistics
  in TensorBoard.
- `epoch_checkpoint.EpochCheckpoint`: crash-safe checkpoints for resuming.
- `non_finite_loss_guard.NonFiniteLossGuard`: Keras' `TerminateOnNaN`,
  recording where the loss diverged.
- `log_keys.add_to_logs`: how the monitor and the diagnostics add their
  measurements to the logs, under their own prefix (`co_monitor/`,
  `diagnostics/`) and never over a key that is there already.
"""

from zerograd_tf.callbacks.auto_quantile import AutoQuantile
from zerograd_tf.callbacks.co_monitor import CatastrophicOverfittingMonitor
from zerograd_tf.callbacks.diagnostics import AdversarialDiagnostics
from zerograd_tf.callbacks.epoch_checkpoint import EpochCheckpoint
from zerograd_tf.callbacks.epsilon_warmup import EpsilonWarmup
from zerograd_tf.callbacks.history_writer import HistoryWriter
from zerograd_tf.callbacks.non_finite_loss_guard import NonFiniteLossGuard

__all__ = [
    "AdversarialDiagnostics",
    "AutoQuantile",
    "CatastrophicOverfittingMonitor",
    "EpochCheckpoint",
    "EpsilonWarmup",
    "HistoryWriter",
    "NonFiniteLossGuard",
]
