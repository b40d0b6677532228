"""Self-tuning ZeroGrad: the quantile rises when training overfits.

See `AutoQuantile`.
"""

import glob
import logging
import os
import re

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import _names, io_utils, monitoring, validation
from zerograd_tf.callbacks.co_monitor import CatastrophicOverfittingMonitor

_LOG = logging.getLogger("zerograd_tf")

# The rule of `ZeroGradModel(quantile="auto")`; see `AutoQuantile`.
START_QUANTILE = _names.DEFAULT_QUANTILE
QUANTILE_STEP = 0.1
MAX_QUANTILE = 0.85
CHECK_EVERY = 20
CHECK_SIZE = 128
CONFIRM_SIZE = 512
CHECK_PGD_STEPS = 5
MAX_GAP = 0.5
# Off: in the development runs of study v3 it acted on CIFAR-10, but every run
# still overfitted, so the study does not carry it (docs/study.md).
SLIDE_DROP = None


class AutoQuantile(CatastrophicOverfittingMonitor):
    """Raises the ZeroGrad quantile whenever catastrophic overfitting starts.

    The rule of `ZeroGradModel(quantile="auto")`, whose `fit` needs this
    callback among its `callbacks` (it adds none itself):

    - **Start** at the paper's q = 0.35 (the model's starting quantile).
    - **Check** every 20 training steps (counted across epochs) and at the
      end of every epoch: clean, FGSM and PGD-5 accuracy (step epsilon / 4,
      from a random start) at the model's target epsilon on the first 128
      held-out examples. CO happens within an epoch; a check costs a few
      training steps (docs/study.md measures the total cost).
    - **Detect** with the package's CO rule
      (`zerograd_tf.monitoring.catastrophic_overfitting`): PGD accuracy
      below half of its best since the last adaptation while FGSM accuracy
      stays above that best (at least 5 %) - or FGSM accuracy above PGD
      accuracy by more than 0.5: the single-step attack misses what the
      multi-step one finds, the gradient masking of CO in a run whose PGD
      accuracy never rose high enough to collapse (MNIST's failure mode in
      the first CO study, where the 9 runs that ended with PGD-10
      accuracy of at least 0.3 never had a gap above 0.47 at an epoch's
      end, and 30 of the other 31 reached 0.58-0.96).
      When the 128 examples signal it, all held-out examples (up to 512)
      are measured and decide, so a noisy batch rarely triggers an
      adaptation.
    - **Act**: restore the weights and optimizer moments of the last
      healthy check, raise q by 0.1 (capped at 0.85), judge the run afresh
      from that check, and continue. At the cap already, restore and stop
      training: even the largest quantile overfits, and the last healthy
      weights are the best this run has (early stopping as the last
      resort).
    - **Slides** (optional, `slide_drop`): robustness can also erode over
      epochs instead of collapsing (the CO study's CIFAR-10 runs). With
      `slide_drop`, every epoch ends with a check of all held-out examples,
      judged also by `zerograd_tf.monitoring.slow_slide` against the
      earlier epoch-end checks since the last adaptation: PGD accuracy
      below `1 - slide_drop` of its best, still falling, with a wider
      FGSM-PGD gap than at the best. A slide is acted on as CO is, except
      that the state restored is that of the last healthy epoch-end check
      (the checks within the slide passed the collapse test).
    - q **never comes down**: the lower quantile overfitted in this run
      already, and each collapse costs the steps since the last healthy
      check; a slightly high q costs little robustness near the safe range
      (docs/study.md).

    Why these numbers: 0.35 is the paper's value and the best when it does
    not overfit; steps of 0.1 reach the quantiles the CO study found safe
    (docs/study.md) in a few adaptations; above 0.85 so few gradient
    elements remain that the attack no longer trains robustness (the
    study's q = 0.9 runs). The
    state (checks, adaptations) resumes with `state_path`; the quantile
    itself is a model variable, saved with the weights. With `slide_drop`,
    the weights and optimizer state of the last two healthy epoch-end
    checks are saved beside `state_path` too
    (`<state_path without .json>.epoch_end_<epoch>.npz`, removed when
    training ends): a resumed run restores after a slide what the
    uninterrupted run would.

    Args:
        x: held-out inputs (floats in [0, 1]), or a `tf.data.Dataset` or
            `keras.utils.PyDataset` of `(x, y)` batches (then `y` is
            `None`); the first 512 examples are used (read once, here).
            Defaults to `None` (only with `measure`).
        y: their labels. Defaults to `None`.
        epsilon: the radius the checks measure at. Defaults to the model's
            target `epsilon` when `fit` starts.
        frequency: steps between checks, or `"epoch"`. Defaults to 20.
        check_size: examples of a routine check. Defaults to 128.
        pgd_steps: PGD steps of a check. Defaults to 5.
        quantile_step: the increase of q on CO. Defaults to 0.1.
        max_quantile: the largest q. Defaults to 0.85.
        max_gap: the largest FGSM-PGD accuracy gap of a healthy check.
            Defaults to 0.5.
        slide_drop: act also on a slow slide that loses this fraction of
            the best PGD accuracy, in (0, 1), or `None` (off). Defaults to
            `None`.
        state_path: JSON file of the state, for resuming. Defaults to
            `None` (not saved).
        logdir: TensorBoard folder for the adaptation messages. Defaults
            to `None`.
        measure: optional `(model) -> accuracies` replacing the attack
            measurement (tests). Defaults to `None`.
        verbose: 1 prints each adaptation. Defaults to 1.

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((64, 8, 8, 1), dtype="float32")
        >>> y = np.arange(64) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, quantile="auto")
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> auto = zg.callbacks.AutoQuantile(x[:32], y[:32], verbose=0)
        >>> _ = model.fit(x, y, epochs=1, batch_size=16, callbacks=[auto], verbose=0)
        >>> round(model.quantile, 2), len(auto.checks)
        (0.35, 1)
    """

    def __init__(self, x=None, y=None, epsilon=None, *, frequency=CHECK_EVERY,
                 check_size=CHECK_SIZE, pgd_steps=CHECK_PGD_STEPS, quantile_step=QUANTILE_STEP,
                 max_quantile=MAX_QUANTILE, max_gap=MAX_GAP, slide_drop=SLIDE_DROP,
                 state_path=None, logdir=None, measure=None, verbose=1):
        self.slide_drop = (None if slide_drop is None
                           else validation.check_fraction(slide_drop, "slide_drop"))
        self._at_epoch_end = False
        self._epoch_end_state = None  # (weights, optimizer) of the last healthy epoch end
        x, y = _first_examples(x, y, CONFIRM_SIZE)
        super().__init__(x, y, epsilon, action="adapt", frequency=frequency,
                         check_size=check_size, pgd_steps=pgd_steps,
                         drop=monitoring.DEFAULT_DROP, min_best=monitoring.DEFAULT_MIN_BEST,
                         quantile_step=quantile_step, max_quantile=max_quantile,
                         max_gap=max_gap, logdir=logdir, state_path=state_path, measure=measure,
                         verbose=verbose)

    def on_epoch_end(self, epoch, logs=None):
        self._at_epoch_end = True
        try:
            last = self.checks[-1] if self.checks else {}
            if (self.slide_drop is not None and not self._stopped
                    and (last.get("epoch"), last.get("step")) == (epoch, self._step_in_epoch)
                    and not last.get("epoch_end") and not last["co"]):
                # The epoch's last step was checked as a routine one: the
                # slide rule needs its full check too.
                self._check(logs)
            else:
                super().on_epoch_end(epoch, logs)
        finally:
            self._at_epoch_end = False

    def _full_check(self):
        return self.slide_drop is not None and self._at_epoch_end

    def _slid(self, check):
        """Whether an epoch-end check (`_full_check`) shows a slow slide."""
        judged = [c for c in self.checks[self._judge_from():]
                  if c.get("epoch_end") and not c["co"]] + [check]
        return monitoring.slow_slide([c["pgd_accuracy"] for c in judged],
                                     [c["fgsm_accuracy"] for c in judged], self.slide_drop,
                                     self.min_best)

    def _record(self, measured, size):
        check = super()._record(measured, size)
        if self._full_check():
            check["epoch_end"] = True
            if not check["co"] and self._slid(check):
                check["co"] = check["slide"] = True
                check["cause"] = "a slow slide of robustness"
        return check

    def on_epoch_begin(self, epoch, logs=None):
        resumed = self._resumed
        super().on_epoch_begin(epoch, logs)
        if resumed and self.slide_drop is not None:
            self._epoch_end_state = self._load_epoch_end_state()

    def on_train_end(self, logs=None):
        # Training ended (not killed): nothing resumes from these any more,
        # nor from what a killed write left.
        for path in self._epoch_end_files(temporaries=True):
            os.remove(path)

    def _snapshot_healthy(self):
        super()._snapshot_healthy()
        last = self.checks[-1] if self.checks else {}
        if last.get("epoch_end") and not last["co"]:
            self._epoch_end_state = (self.healthy_weights, self.healthy_optimizer)
            self._save_epoch_end_state(last["epoch"])

    # The slide rule's restore point can be older than the checkpoint a run
    # resumes from (after a collapse that ended an epoch), so with
    # `state_path` it is saved beside the state: one file per healthy
    # epoch-end check, the newest two kept (a kill can leave the newest one
    # from the epoch that is run again; a checkpoint that skipped an epoch
    # with a non-finite loss can lag further, and then a resumed slide
    # restores the last healthy check, with a warning).
    def _epoch_end_path(self, epoch):
        return f"{os.path.splitext(self.state_path)[0]}.epoch_end_{epoch}.npz"

    def _save_epoch_end_state(self, epoch):
        if not self.state_path or self.slide_drop is None:
            return
        weights, optimizer = self._epoch_end_state
        arrays = {**{f"w{i}": w for i, w in enumerate(weights)},
                  **{f"o{i}": v for i, v in enumerate(optimizer or [])}}
        with io_utils.replacing(self._epoch_end_path(epoch)) as temporary:
            with open(temporary, "wb") as f:
                np.savez(f, **arrays)
        for old in self._epoch_end_files()[:-2]:
            os.remove(old)

    def _epoch_end_files(self, temporaries=False):
        """The saved epoch-end states, oldest first (and with `temporaries`
        the temporary files of writes a kill interrupted)."""
        if not self.state_path:
            return []
        base = os.path.splitext(self.state_path)[0]
        saved = {}
        for path in glob.glob(f"{glob.escape(base)}.epoch_end_*.npz"):
            if io_utils.is_temporary(path):
                if temporaries:
                    saved[path] = -1
                continue
            found = re.fullmatch(rf"{re.escape(base)}\.epoch_end_(\d+)\.npz", path)
            if found:
                saved[path] = int(found[1])
        return sorted(saved, key=saved.get)

    def _load_epoch_end_state(self):
        """The state of the last healthy epoch-end check that the resumed
        run keeps, from its file (`None` when there is none)."""
        ends = [c["epoch"] for c in self.checks if c.get("epoch_end") and not c["co"]]
        if not ends or not self.state_path:
            return None
        path = self._epoch_end_path(ends[-1])
        if not os.path.exists(path):
            _LOG.warning("%s is missing: a slow slide will restore the last healthy check "
                         "instead of the last healthy epoch end.", path)
            return None
        with np.load(path) as saved:
            weights = [saved[f"w{i}"] for i in range(sum(k[0] == "w" for k in saved.files))]
            optimizer = [saved[f"o{i}"] for i in range(sum(k[0] == "o" for k in saved.files))]
        return weights, optimizer

    def _act(self, check):
        if check.get("slide") and self._epoch_end_state is not None:
            # The checks within the slide passed the collapse test: go back to
            # the last healthy epoch end instead.
            self.healthy_weights, self.healthy_optimizer = self._epoch_end_state
        super()._act(check)


def _first_examples(x, y, size):
    """The first `size` held-out examples, as `(x, y)` arrays.

    Args:
        x: inputs, or a `tf.data.Dataset` or `keras.utils.PyDataset` of
            `(x, y)` batches (with `y=None`), or `None`.
        y: labels, or `None`.
        size: the number of examples.

    Returns:
        `(x[:size], y[:size])`; `(None, None)` for no data.

    Raises:
        TypeError: for a `x` without `y` that is not a dataset.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> data = tf.data.Dataset.from_tensor_slices((np.ones((5, 2)), np.arange(5))).batch(2)
        >>> x, y = _first_examples(data, None, 3)
        >>> x.shape, y.tolist()
        ((3, 2), [0, 1, 2])
    """
    if x is None and y is None:
        return None, None
    if y is not None:
        return x[:size], y[:size]
    if isinstance(x, tf.data.Dataset):
        batches = iter(x)
    elif isinstance(x, keras.utils.PyDataset):
        batches = (x[index] for index in range(len(x)))
    else:
        raise TypeError(
            "AutoQuantile takes held-out `x` and `y` arrays, or a tf.data.Dataset or "
            "keras.utils.PyDataset of (x, y) batches as `x`; got "
            f"{type(x).__name__} without `y`.")
    xs, ys, count = [], [], 0
    for batch in batches:
        bx, by, _ = keras.utils.unpack_x_y_sample_weight(batch)
        xs.append(np.asarray(bx))
        ys.append(np.asarray(by))
        count += len(xs[-1])
        if count >= size:
            break
    return np.concatenate(xs)[:size], np.concatenate(ys)[:size]
