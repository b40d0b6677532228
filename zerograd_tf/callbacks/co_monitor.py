"""A callback that detects catastrophic overfitting as it happens, and acts.

See `CatastrophicOverfittingMonitor`.
"""

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import io_utils, monitoring, validation
from zerograd_tf.callbacks.log_keys import add_to_logs

CO_ACTIONS = ("warn", "stop", "adapt")
# The prefix of the monitor's keys in the epoch logs (and its TensorBoard folder).
LOG_PREFIX = "co_monitor"
_LOG = logging.getLogger("zerograd_tf")


class CatastrophicOverfittingMonitor(keras.callbacks.Callback):
    """Watches FGSM and PGD accuracy on a fixed batch; acts on catastrophic overfitting.

    At the end of every epoch, and with an int `frequency` N also every N
    training steps (counted across epochs since the last check), the
    monitor measures clean, FGSM and PGD-k accuracy on the fixed held-out
    batch `(x, y)` and applies the CO rule of
    `zerograd_tf.monitoring.catastrophic_overfitting`: CO is declared when
    PGD accuracy falls below `drop` (default 1/2) of its best earlier value
    while FGSM accuracy stays above that best, which must be at least
    `min_best` (5 %). Why these defaults: in CO the PGD accuracy does not
    erode, it collapses (typically to a few percent within an epoch), so
    halving is a clear signal while ordinary noise of a few points on a batch
    of 500 is not; requiring FGSM accuracy to stay above the best PGD
    accuracy separates CO (the single-step attack is defeated, PGD is not)
    from a general divergence, where all accuracies fall together.

    Actions:

    - `"warn"`: logs a warning (and a TensorBoard text entry if `logdir`).
    - `"stop"`: restores the weights of the last healthy check and stops
      training (the early stopping of Wong et al., 2020).
    - `"adapt"`: restores those weights and continues with the ZeroGrad
      quantile raised by `quantile_step` (up to `max_quantile`); needs a
      `ZeroGradModel`. At `max_quantile` already, it restores and stops,
      as `"stop"` does.

    Every epoch ends with a check, so the weights that the epoch logs,
    checkpoints and the final model describe are always checked ones:
    healthy, or restored to the last healthy check. With `check_size`,
    routine checks measure only the first `check_size` examples of `x`;
    when those signal CO, all of `x` is measured and decides (a cheap check
    most of the time, a precise one before acting).

    The measurements are added to the logs of the epoch (and of the step
    checked) under the prefix `co_monitor/`, which no model metric has:
    `co_monitor/clean_accuracy`, `co_monitor/fgsm_accuracy`,
    `co_monitor/pgd_accuracy`, `co_monitor/detected` (1.0 or 0.0) and
    `co_monitor/epsilon`; a key already in the logs raises a `ValueError`
    rather than being replaced (see `log_keys.add_to_logs`). Place the
    monitor before `TensorBoard`/`CSVLogger` in the callback list to have
    them logged. With `state_path`, the monitor's checks and events are
    saved after every check and restored when training resumes from an
    epoch checkpoint (`fit(initial_epoch=n)`): the checks and events of
    epochs that are run again are dropped, and the healthy weights are the
    restored ones (the checkpoint was taken after a check), so a resumed
    run continues exactly as the uninterrupted one.

    Args:
        x: the fixed held-out inputs (floats in [0, 1]). Defaults to
            `None` (only with `measure`).
        y: their labels. Defaults to `None`.
        epsilon: the radius every check measures at, recorded with each
            check (`co_monitor/epsilon` in the logs). Defaults to the model's
            `epsilon` when `fit` starts - its target, before an epsilon
            warm-up lowers it; pass it explicitly when a run resumes in the
            middle of a warm-up.
        action: `"warn"`, `"stop"` or `"adapt"`. Defaults to `"warn"`.
        frequency: `"epoch"`, or an int N to check also every N training
            steps. Defaults to `"epoch"`.
        check_size: examples of a routine check (the first of `x`), or
            `None` for all of `x`. Defaults to `None`.
        pgd_steps: steps of the PGD measurement. Defaults to 10.
        drop: the fraction of the best PGD accuracy below which it has
            collapsed, in (0, 1). Defaults to 0.5.
        min_best: the least best PGD accuracy that counts as robust, in
            [0, 1). Defaults to 0.05.
        quantile_step: how much `"adapt"` raises the quantile, in (0, 1).
            Defaults to 0.1.
        max_quantile: the largest quantile `"adapt"` sets, in (0, 1).
            Defaults to 0.95.
        max_gap: also act when FGSM accuracy exceeds PGD accuracy by more
            than this, in (0, 1): the single-step attack misses what the
            multi-step one finds (gradient masking) even where PGD accuracy
            never rose high enough to collapse. Defaults to `None` (off:
            the CO rule alone).
        logdir: TensorBoard folder for the text entries. Defaults to
            `None` (none written).
        state_path: JSON file of the monitor's state (resume). Defaults to
            `None` (not saved).
        measure: a `(model) -> {"clean_accuracy", "fgsm_accuracy",
            "pgd_accuracy"}` replacing the attack measurement (tests).
            Defaults to `None`.
        verbose: 1 prints each detection, 0 nothing. Defaults to 1.

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1, random_init=True, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> monitor = zg.CatastrophicOverfittingMonitor(x[:16], y[:16], action="stop",
        ...                                            pgd_steps=2, verbose=0)
        >>> history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[monitor], verbose=0)
        >>> len(monitor.checks)
        2
        >>> sorted(k.split("/")[1] for k in history.history if k.startswith("co_monitor/"))
        ['clean_accuracy', 'detected', 'epsilon', 'fgsm_accuracy', 'pgd_accuracy']
    """

    def __init__(self, x=None, y=None, epsilon=None, *, action="warn", frequency="epoch",
                 check_size=None, pgd_steps=10, drop=monitoring.DEFAULT_DROP,
                 min_best=monitoring.DEFAULT_MIN_BEST, quantile_step=0.1,
                 max_quantile=0.95, max_gap=None, logdir=None, state_path=None, measure=None,
                 verbose=1):
        super().__init__()
        self.action = validation.check_choice(action, "action", CO_ACTIONS)
        if frequency != "epoch":
            frequency = validation.check_int(frequency, "frequency", 1)
        self.frequency = frequency
        if measure is None and (x is None or y is None):
            raise ValueError("Pass the held-out batch `x` and `y` (or a `measure` function).")
        if x is not None and y is not None:
            validation.check_same_length(x, y)
        self.x, self.y = x, y
        self.check_size = (None if check_size is None
                           else validation.check_int(check_size, "check_size", 1))
        self.epsilon = None if epsilon is None else validation.check_epsilon(epsilon)
        self.pgd_steps = validation.check_int(pgd_steps, "pgd_steps", 1)
        self.drop = validation.check_fraction(drop, "drop")
        self.min_best = validation.check_fraction(min_best, "min_best", zero=True)
        self.quantile_step = validation.check_fraction(quantile_step, "quantile_step")
        self.max_quantile = validation.check_fraction(max_quantile, "max_quantile")
        self.max_gap = None if max_gap is None else validation.check_fraction(max_gap,
                                                                               "max_gap")
        self.logdir, self.state_path = logdir, state_path
        self.measure = measure
        self.verbose = validation.check_choice(verbose, "verbose", (0, 1))
        self._reset()
        self._writer = None

    def _reset(self):
        """The state of a fresh run (every `fit` starts from it, as Keras'
        `EarlyStopping` does, then reloads `state_path` when resuming)."""
        # {"epoch", "step", "global_step", "epsilon", "size", "...accuracy",
        #  "co", "judge_from"}; "judge_from" is the index of the first check
        # the CO rule looks at after this one (an adaptation starts afresh).
        self.checks = []
        self.events = []          # {"epoch", "step", "action", "restored", "quantile"}
        self.healthy_weights = None
        self.healthy_optimizer = None
        self._meter = None
        self._target_epsilon = self.epsilon
        self._epoch = 0
        self._step_in_epoch = 0
        self._global_step = 0
        self._epoch_start = 0     # the optimizer's step at this epoch's start
        self._resumed = False
        self._stopped = False     # this monitor stopped training (another may too)

    # ------------------------------------------------------------------
    def _classifier(self):
        """The weights the monitor snapshots: the wrapped classifier's."""
        return getattr(self.model, "classifier", self.model)

    def on_train_begin(self, logs=None):
        self._reset()
        if self._target_epsilon is None:
            # Before an epsilon warm-up lowers it: the model's target radius.
            self._target_epsilon = getattr(self.model, "epsilon", None)
        if self.action == "adapt" and not hasattr(self.model, "quantile"):
            raise ValueError(
                "action='adapt' raises the ZeroGrad quantile, so it needs a ZeroGradModel; "
                f"got {type(self.model).__name__}. Use 'warn' or 'stop'.")
        if self.state_path and os.path.exists(self.state_path):
            self._load_state()
            self._resumed = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._step_in_epoch = epoch, 0
        self._global_step = self._epoch_start = self._optimizer_step()
        if self._resumed:
            # Resumed from the checkpoint of epoch `epoch`: drop the checks
            # and events of the epochs that are run again. That checkpoint
            # was written after the epoch's closing check, whose weights were
            # healthy or restored to the healthy ones: they are the healthy
            # state again, if any check was healthy (else there is none).
            self.checks = [c for c in self.checks if c["epoch"] < epoch]
            self.events = [e for e in self.events if e["epoch"] < epoch]
            if any(not c["co"] for c in self.checks) and self.action != "warn":
                self._snapshot_healthy()
            self._resumed = False

    def _optimizer_step(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return 0
        return int(keras.ops.convert_to_numpy(optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last step run: under steps_per_execution
        # = k, Keras calls this once per k steps, and after an epoch's shorter
        # last execution it reports k - 1 past the last step started.
        steps = (self.params or {}).get("steps")
        self._step_in_epoch = batch + 1 if not steps else min(batch + 1, steps)
        self._global_step = self._epoch_start + self._step_in_epoch
        if self.frequency == "epoch":
            return
        # Steps since the last check, across epochs (and a resume, through
        # the checks' global steps): a frequency longer than an epoch fires.
        last = self.checks[-1]["global_step"] if self.checks else 0
        if self._global_step - last >= self.frequency and not self.model.stop_training:
            self._check(logs)

    def on_epoch_end(self, epoch, logs=None):
        last = self.checks[-1] if self.checks else {}
        checked = (last.get("epoch"), last.get("step")) == (epoch, self._step_in_epoch)
        # Every epoch ends with a check, also when another callback (early
        # stopping at this epoch's end, a non-finite loss) stops training.
        if not checked and not self._stopped:
            self._check(logs)
        elif logs is not None and self.checks:
            self._add_logs(logs, self.checks[-1])

    # ------------------------------------------------------------------
    def _measure(self, size=None):
        if self.measure is not None:
            return self.measure(self.model)
        if self._meter is None:
            self._meter = monitoring.AttackMeter(self.model, self._target_epsilon,
                                                 pgd_steps=self.pgd_steps)
        x, y = (self.x, self.y) if size is None else (self.x[:size], self.y[:size])
        return self._meter(x, y, epsilon=self._target_epsilon)

    def _judge(self, check):
        """Whether the checks so far, ending with `check`, show CO (or, with
        `max_gap`, an FGSM-PGD gap above it)."""
        if self._gap_exceeded(check):
            return True
        judged = self.checks[self._judge_from():] + [check]
        return monitoring.catastrophic_overfitting(
            [c["pgd_accuracy"] for c in judged], [c["fgsm_accuracy"] for c in judged],
            self.drop, self.min_best)

    def _gap_exceeded(self, check):
        return self.max_gap is not None and (
            check["fgsm_accuracy"] - check["pgd_accuracy"] > self.max_gap)

    def _judge_from(self):
        return self.checks[-1]["judge_from"] if self.checks else 0

    def _full_check(self):
        """Whether this check measures all of `x` (subclasses: at an epoch's end)."""
        return False

    def _check(self, logs):
        routine = self.check_size
        if self.x is not None and (routine is None or routine >= len(self.x)
                                   or self._full_check()):
            routine = None
        check = self._record(self._measure(routine), routine)
        if check["co"] and routine is not None:
            # A cheap check signalled CO: all held-out examples decide.
            check = self._record(self._measure(None), None)
        check["judge_from"] = self._judge_from()
        self.checks.append(check)
        if check["co"]:
            self._act(check)
        else:
            self._snapshot_healthy()
        if logs is not None:
            self._add_logs(logs, check)
        self._save_state()

    def _record(self, measured, size):
        check = {"epoch": self._epoch, "step": self._step_in_epoch,
                 "global_step": self._global_step, "epsilon": self._target_epsilon,
                 "size": size if size is not None else (
                     None if self.x is None else len(self.x)),
                 **{k: float(measured[k]) for k in
                    ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy")}}
        check["co"] = self._judge(check)
        return check

    def _snapshot_healthy(self):
        self.healthy_weights = [np.array(w) for w in self._classifier().get_weights()]
        self.healthy_optimizer = self._optimizer_state()

    def _add_logs(self, logs, check):
        values = {name: check[name] for name in
                  ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy")}
        values["detected"] = float(check["co"])
        if check.get("epsilon") is not None:
            values["epsilon"] = check["epsilon"]
        add_to_logs(logs, LOG_PREFIX, values)

    def _optimizer_variables(self):
        """The optimizer's slots (momentum, moments), not its step counter,
        which keeps counting: it drives the learning rate and the attack's
        random numbers."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not optimizer.built:
            return []
        return [v for v in optimizer.variables if v is not optimizer.iterations]

    def _optimizer_state(self):
        return [np.array(keras.ops.convert_to_numpy(v)) for v in self._optimizer_variables()]

    def _act(self, check):
        best = max((c["pgd_accuracy"] for c in self.checks[check["judge_from"]:-1]),
                   default=0.0)
        cause = ("an FGSM-PGD gap above the limit" if self._gap_exceeded(check)
                 else check.get("cause", "catastrophic overfitting"))
        message = (f"{cause} at epoch {check['epoch'] + 1}, step "
                   f"{check['step']}: PGD-{self.pgd_steps} accuracy {check['pgd_accuracy']:.3f} "
                   f"(best {best:.3f}) while FGSM accuracy is {check['fgsm_accuracy']:.3f}")
        restorable = self.healthy_weights is not None and self.action != "warn"
        event = {"epoch": check["epoch"], "step": check["step"], "action": self.action,
                 "restored": restorable}
        if restorable:
            # The weights (BatchNorm statistics included) and the optimizer's
            # moments of the last healthy check: the state the run continues
            # from is that of a healthy run, not healthy weights driven by the
            # momentum of the collapse.
            self._classifier().set_weights(self.healthy_weights)
            variables = self._optimizer_variables()
            if self.healthy_optimizer is not None and len(variables) == len(
                    self.healthy_optimizer):
                for variable, value in zip(variables, self.healthy_optimizer):
                    variable.assign(value)
        restored = ("restored the last healthy weights and optimizer state" if restorable
                    else "no healthy check to restore yet, kept the current weights")
        at_cap = self.action == "adapt" and self.model.quantile >= self.max_quantile - 1e-6
        if self.action == "stop" or at_cap:
            # With the quantile at its cap, adapting cannot help: stop at the
            # last healthy weights (early stopping as the last resort).
            self.model.stop_training = self._stopped = True
            event["action"] = "stop"
            message += (f"; the quantile is at its cap ({self.max_quantile:.3f})" if at_cap
                        else "") + f"; {restored} and stopped."
        elif self.action == "adapt":
            quantile = min(self.model.quantile + self.quantile_step, self.max_quantile)
            self.model.quantile = quantile
            event["quantile"] = quantile
            message += f"; {restored}, quantile now {quantile:.3f}."
            # Judge the adapted run afresh, from the restored healthy check on.
            healthy = [i for i, c in enumerate(self.checks) if not c["co"]]
            check["judge_from"] = healthy[-1] if healthy else len(self.checks)
        self.events.append(event)
        _LOG.warning(message)
        if self.verbose:
            print(f"CatastrophicOverfittingMonitor: {message}")
        self._write_text(message, check)

    def _write_text(self, message, check):
        if not self.logdir:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, LOG_PREFIX))
        with self._writer.as_default():
            tf.summary.text("catastrophic_overfitting", message, step=check["epoch"])
        self._writer.flush()

    # ------------------------------------------------------------------
    def _save_state(self):
        if self.state_path:
            io_utils.write_json_atomic(self.state_path,
                                       {"checks": self.checks, "events": self.events})

    def _read_state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def _load_state(self):
        state = self._read_state()
        self.checks, self.events = state["checks"], state["events"]

    def stopped_before(self, epoch):
        """Whether the saved state (`state_path`) records a stop in an epoch
        before `epoch`: a resumed run that must not train further."""
        if not self.state_path or not os.path.exists(self.state_path):
            return False
        events = self._read_state().get("events", [])
        return any(e["action"] == "stop" and e["epoch"] < epoch for e in events)

    @property
    def stopped(self):
        """Whether the monitor has stopped training (action `"stop"`)."""
        return any(e["action"] == "stop" for e in self.events)

    @property
    def detected(self):
        """Whether catastrophic overfitting has been detected so far."""
        return bool(self.events)
