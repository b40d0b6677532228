"""The attacks `evaluate_robustness` composes: one small spec each, one registry.

A spec says how to run one attack on a batch and what it costs; the engine
(`zerograd_tf.evaluation.engine`) composes any sequence of them, running each
stage only on the examples still robust. Adding an attack takes its function
in `zerograd_tf.attacks`, a spec here (registered with `@_register`) and its
name in `zerograd_tf._names.ATTACKS` (the TensorFlow-free list the programs
check options against; a test keeps the two equal).

A spec's `attack(context, x, y, seed, *extra)` returns a perturbation for
the batch; it runs compiled (under XLA with `jit_compile`), so it must be a
pure TensorFlow function of its arguments. `stages(settings, num_classes)`
lists the extra arguments of its calls, one tuple per call, in order: the
engine compacts the batch between calls (restarts, APGD-T's target classes).
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from zerograd_tf import attacks
from zerograd_tf import objectives as objectives_lib
from zerograd_tf.attacks import losses as attack_losses


@dataclasses.dataclass(frozen=True)
class Settings:
    """The budgets of the attacks (see `evaluate_robustness` for each).

    Examples:
        >>> Settings(steps=50, restarts=10, alpha=0.025).apgd_steps
        100
    """

    steps: int = 50
    restarts: int = 10
    alpha: float = 0.025
    early_stop: bool = True
    apgd_steps: int = 100
    apgd_restarts: int = 1
    apgd_targets: int = 9
    square_queries: int = 5000


@dataclasses.dataclass(frozen=True)
class Context:
    """What an attack needs besides its batch: the model, the radius, the
    budgets, the report's objective and whether it runs under XLA."""

    model: object
    epsilon: float
    settings: Settings
    objective: Callable
    jit_compile: bool = False

    def logit_objective(self, loss_fn):
        """An inference-mode objective whose loss `loss_fn(y, logits)` sees
        logits (those under a final softmax, for a softmax model)."""
        return objectives_lib.model_objective(
            self.model, loss=lambda y, y_pred: loss_fn(y, attack_losses.as_logits(y_pred)),
            training=False)


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack of the evaluation.

    Attributes:
        name: its name in `attack=` (e.g. `"apgd-ce"`).
        label: `(settings, num_classes) -> str`, the attack and its budget
            (e.g. `"APGD-CE-100"`) for reports and progress bars.
        stages: `(settings, num_classes) -> [extra_arguments, ...]`, one
            tuple per call of `attack`, in order.
        attack: `(context, x, y, seed, *extra) -> delta`, one call on a batch.
        min_classes: the fewest classes the model may have. Defaults to 2.
        gradient_free: uses no gradient (the gradient-masking check counts
            the examples such an attack breaks after gradient attacks).
            Defaults to False.
    """

    name: str
    label: Callable
    stages: Callable
    attack: Callable
    min_classes: int = 2
    gradient_free: bool = False


#: The registered specs, by name, in registration order.
REGISTRY = {}


def _register(spec):
    if spec.name in REGISTRY:
        raise ValueError(f"attack {spec.name!r} is registered twice.")
    REGISTRY[spec.name] = spec
    return spec


def _restarts_suffix(settings):
    return f"x{settings.apgd_restarts}" if settings.apgd_restarts > 1 else ""


def _apgd_restarts(settings, num_classes):
    return [()] * settings.apgd_restarts


def _targets(settings, num_classes):
    return min(settings.apgd_targets, num_classes - 1)


def _pgd(context, x, y, seed):
    s = context.settings
    delta, _ = attacks.pgd(context.objective, x, y, context.epsilon, s.alpha, steps=s.steps,
                           restarts=s.restarts, early_stop=s.early_stop,
                           compact=not context.jit_compile, seed=seed)
    return delta


def _apgd_on(loss_fn):
    def run(context, x, y, seed):
        delta, _ = attacks.apgd(context.logit_objective(loss_fn), x, y, context.epsilon,
                                steps=context.settings.apgd_steps, seed=seed)
        return delta

    return run


def _apgd_targeted(context, x, y, seed, rank):
    # The target: the class of the given rank in the clean prediction
    # (2 = the highest-scoring other class), as in the reference.
    logits = attack_losses.as_logits(context.model(x, training=False))
    targets = tf.gather(tf.argsort(logits, axis=-1, direction="DESCENDING"), rank - 1, axis=1)
    objective = context.logit_objective(
        lambda y_true, z: attack_losses.targeted_dlr_loss(y_true, z, targets))
    delta, _ = attacks.apgd(objective, x, y, context.epsilon,
                            steps=context.settings.apgd_steps, seed=seed)
    return delta


def _square(context, x, y, seed):
    delta, _ = attacks.square(context.logit_objective(attack_losses.margin_loss), x, y,
                              context.epsilon, queries=context.settings.square_queries,
                              seed=seed)
    return delta


PGD = _register(AttackSpec(
    "pgd", label=lambda s, _: f"PGD-{s.steps}-{s.restarts}",
    stages=lambda s, _: [()], attack=_pgd))
APGD_CE = _register(AttackSpec(
    "apgd-ce", label=lambda s, _: f"APGD-CE-{s.apgd_steps}{_restarts_suffix(s)}",
    stages=_apgd_restarts, attack=_apgd_on(attack_losses.cross_entropy_loss)))
APGD_DLR = _register(AttackSpec(
    "apgd-dlr", label=lambda s, _: f"APGD-DLR-{s.apgd_steps}{_restarts_suffix(s)}",
    stages=_apgd_restarts, attack=_apgd_on(attack_losses.dlr_loss), min_classes=3))
APGD_T = _register(AttackSpec(
    "apgd-t",
    label=lambda s, n: f"APGD-T-{s.apgd_steps}{_restarts_suffix(s)} ({_targets(s, n)} targets)",
    stages=lambda s, n: [(tf.constant(rank),) for rank in range(2, _targets(s, n) + 2)
                         for _ in range(s.apgd_restarts)],
    attack=_apgd_targeted, min_classes=4))
SQUARE = _register(AttackSpec(
    "square", label=lambda s, _: f"Square-{s.square_queries}",
    stages=lambda s, _: [()], attack=_square, gradient_free=True))
