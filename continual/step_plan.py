"""How the module's own optimizer step runs in one fit: decided once, at the fit's start.

Lightning's ``manual_backward`` and its optimizer wrapper's ``step`` dispatch five hooks a step
(``on_before_backward`` and ``on_after_backward`` to callbacks and module,
``on_before_optimizer_step`` to callbacks) through its strategy and precision plugin. When
nothing overrides those hooks and neither the strategy nor the precision plugin acts in them
(one device, 32-bit, no profiler recording), the step can call ``loss.backward()`` and the
optimizer directly: the same arithmetic, the same hooks that do something, the same step count.
Anything else (DDP, mixed precision, a callback that reads gradients) keeps Lightning's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy

from continual.profiler import NullProfiler

# Hooks Lightning dispatches between backward and the optimizer's update.
_CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
_MODULE_STEP_HOOKS = ("manual_backward", "backward", "on_before_backward", "on_after_backward")


@dataclass(frozen=True)
class StepPlan:
    """What :meth:`ContinualModule.training_step` needs for its update, fixed for one fit.

    Attributes:
        optimizer: Lightning's wrapper of the fit's optimizer (it counts the steps).
        zero_grad_callbacks: the callbacks that override ``on_before_zero_grad``.
        direct: backward and the optimizer are called directly (see the module docstring).
    """

    optimizer: LightningOptimizer
    zero_grad_callbacks: tuple[Callback, ...]
    direct: bool


def overrides(obj: object, base: type, name: str) -> bool:
    """Whether ``obj`` (its class, or the object itself) defines ``name`` unlike ``base``."""
    return (name in getattr(obj, "__dict__", {})
            or getattr(type(obj), name, None) is not getattr(base, name, None))


def plan_step(trainer: Trainer, module: LightningModule, optimizer: LightningOptimizer
              ) -> StepPlan:
    """The step plan for a fit of ``module`` by ``trainer`` with ``optimizer``."""
    callbacks = trainer.callbacks
    direct = (
        type(trainer.strategy) is SingleDeviceStrategy
        and type(trainer.precision_plugin) is Precision
        and type(trainer.profiler) in (PassThroughProfiler, NullProfiler)  # records nothing
        and not any(overrides(cb, Callback, h) for cb in callbacks for h in _CALLBACK_STEP_HOOKS)
        and not any(overrides(module, LightningModule, h) for h in _MODULE_STEP_HOOKS)
        # Lightning counts manual steps through these two; another layout: its own path.
        and callable(getattr(optimizer, "_on_before_step", None))
        and callable(getattr(optimizer, "_on_after_step", None))
    )
    zero_grad = tuple(cb for cb in callbacks if overrides(cb, Callback, "on_before_zero_grad"))
    return StepPlan(optimizer, zero_grad, direct)
