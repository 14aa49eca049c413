"""When to retrain: triggers that watch the labelled outcomes of the deployed model.

A trigger sees one :class:`Observation` per chunk whose labels have arrived (the deployed
model's per-sample errors on it) and answers :meth:`Trigger.fire`. After every retrain the
simulator calls :meth:`Trigger.reset`, with the new model's held-out accuracy when it was
deployed, so each trigger measures from the model now serving.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch
from river.base import BinaryDriftDetector
from river.base import DriftDetector as RiverDriftDetector
from torch import Tensor

from continual.errors import ConfigError


@dataclass
class Observation:
    """The deployed model's outcome on one labelled chunk."""

    step: int
    errors: Tensor  # [n] bool, True where the prediction was wrong

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def accuracy(self) -> float:
        return 1.0 - float(self.errors.double().mean()) if self.n else float("nan")


class Trigger:
    """Base class: never fires."""

    def observe(self, obs: Observation) -> None:
        """Take in one labelled chunk's outcome."""

    def fire(self) -> bool:
        """Whether to retrain now."""
        return False

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        """A retrain happened; ``reference`` is the serving model's accuracy right after it."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Never(Trigger):
    """The stale baseline: the first model serves forever."""


class EveryK(Trigger):
    """Retrain on a schedule: every ``k`` labelled chunks."""

    def __init__(self, k: int = 1) -> None:
        _at_least(1, k=k)
        self.k, self._seen = k, 0

    def observe(self, obs: Observation) -> None:
        self._seen += 1

    def fire(self) -> bool:
        return self._seen >= self.k

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        self._seen = 0


class NewSamples(Trigger):
    """Retrain once ``n`` new labelled samples have arrived since the last retrain."""

    def __init__(self, n: int = 1000) -> None:
        _at_least(1, n=n)
        self.n, self._count = n, 0

    def observe(self, obs: Observation) -> None:
        self._count += obs.n

    def fire(self) -> bool:
        return self._count >= self.n

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        self._count = 0


class AccuracyThreshold(Trigger):
    """Retrain when recent accuracy falls below a floor, or too far below the reference.

    Over the last ``window`` chunks observed since the last retrain (sample-weighted):
    fires when accuracy < ``min_accuracy`` (absolute), or when it is more than ``max_drop``
    below the accuracy the serving model had right after its deployment (relative).

    Args:
        min_accuracy: absolute floor in [0, 1]; ``None`` to disable.
        max_drop: allowed drop below the post-deployment accuracy; ``None`` to disable.
        window: chunks averaged before deciding (fewer chunks, faster and noisier).
    """

    def __init__(self, min_accuracy: float | None = None, max_drop: float | None = 0.1,
                 window: int = 1) -> None:
        _at_least(1, window=window)
        if min_accuracy is None and max_drop is None:
            raise ConfigError("min_accuracy=None and max_drop=None disable the threshold; "
                              "allowed: set at least one")
        self.min_accuracy, self.max_drop, self.window = min_accuracy, max_drop, window
        self._recent: list[Observation] = []
        self._reference: float | None = None

    def observe(self, obs: Observation) -> None:
        self._recent = [*self._recent, obs][-self.window:]

    def fire(self) -> bool:
        if len(self._recent) < self.window:
            return False
        errors = torch.cat([o.errors for o in self._recent])
        accuracy = 1.0 - float(errors.double().mean())
        if self.min_accuracy is not None and accuracy < self.min_accuracy:
            return True
        return (self.max_drop is not None and self._reference is not None
                and accuracy < self._reference - self.max_drop)

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        self._recent = []
        if deployed:
            self._reference = reference


# The short names: river's detectors of a change in an error rate.
DETECTORS = {"ADWIN": "river.drift.ADWIN", "KSWIN": "river.drift.KSWIN",
             "PageHinkley": "river.drift.PageHinkley", "DDM": "river.drift.binary.DDM",
             "EDDM": "river.drift.binary.EDDM", "HDDMA": "river.drift.binary.HDDMA",
             "HDDMW": "river.drift.binary.HDDMW", "FHDDM": "river.drift.binary.FHDDM"}
#: A short name as a config gives it: ``ADWIN`` or ``adwin`` …
DetectorName = Literal[tuple([*DETECTORS, *(name.lower() for name in DETECTORS)])]
_ALLOWED = (f"{', '.join(DETECTORS)} (or in lower case), an import path, or "
            "{class_path: <a river.base.DriftDetector or BinaryDriftDetector subclass>, "
            "init_args: {...}}")


class DriftDetector(Trigger):
    """Retrain when a river drift detector flags a change in the per-sample error stream.

    Each labelled sample's error (1 wrong, 0 right) is fed to the detector in arrival order.
    The detector is not restarted after a retrain: like river's own drift-retraining models,
    it keeps its window, which shrinks past a change, so a retrain that leaves the error high
    is not mistaken for a stable state and a recovery is seen as the change it is.

    Args:
        detector: a river detector, by short name: ``ADWIN``, ``KSWIN``, ``PageHinkley``
            (``river.drift``) or ``DDM``, ``EDDM``, ``HDDMA``, ``HDDMW``, ``FHDDM``
            (``river.drift.binary``), or in lower case; by import path; or, like any class in
            a config, by
            ``{class_path: river.drift.ADWIN, init_args: {delta: 0.002}}`` (in Python: a
            detector object, which is cloned, never updated in place).
        kwargs: keyword arguments for a detector named by short name or path (``delta`` for
            ADWIN …); with a class path, ``init_args`` are the place for them.
        seed: passed as ``seed`` to detectors that sample (KSWIN), unless they set one.
    """

    def __init__(self, detector: DetectorName | RiverDriftDetector | BinaryDriftDetector = "ADWIN",
                 kwargs: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.detector, self.kwargs, self.seed = detector, dict(kwargs or {}), seed
        self._detector = self._new()
        from river.drift.binary import FHDDM

        # FHDDM (as in its paper and river's code) watches for a *fall* in the rate of ones,
        # so it is fed correctness; the others watch for a rise in the error rate.
        self._feed_correct = isinstance(self._detector, FHDDM)
        self._detected = False

    def _new(self) -> Any:
        if isinstance(self.detector, str):
            cls = _detector_class(self.detector)
            seeded = "seed" in inspect.signature(cls).parameters
            kwargs = {**({"seed": self.seed} if seeded else {}), **self.kwargs}
            try:
                return cls(**kwargs)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"kwargs={self.kwargs!r} do not fit river's {cls.__name__}: "
                                  f"{e}") from None
        if not isinstance(self.detector, RiverDriftDetector | BinaryDriftDetector):
            raise ConfigError(f"detector={self.detector!r} is invalid; allowed: {_ALLOWED}")
        params = dict(self.kwargs)
        if "seed" in inspect.signature(type(self.detector)).parameters and \
                getattr(self.detector, "seed", None) is None:
            params.setdefault("seed", self.seed)
        try:
            return self.detector.clone(params)  # a fresh detector: the given one stays unused
        except (TypeError, ValueError) as e:
            raise ConfigError(f"kwargs={self.kwargs!r} do not fit river's "
                              f"{type(self.detector).__name__}: {e}") from None

    def observe(self, obs: Observation) -> None:
        bits = ~obs.errors if self._feed_correct else obs.errors
        for bit in bits.tolist():
            self._detector.update(int(bit))
            self._detected = self._detected or self._detector.drift_detected

    def fire(self) -> bool:
        return self._detected

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        self._detected = False

    def __repr__(self) -> str:  # one line, also for a detector object (river's spans lines)
        detector = self.detector
        if not isinstance(detector, str):
            params = inspect.signature(type(detector)).parameters
            args = ", ".join(f"{k}={getattr(detector, k)!r}" for k in params
                             if hasattr(detector, k))
            detector = f"{type(detector).__name__}({args})"
        else:
            detector = repr(detector)
        return f"DriftDetector(detector={detector}, kwargs={self.kwargs!r}, seed={self.seed!r})"


def _detector_class(name: str) -> type:
    """A short name (any case) or an import path → a river drift detector class."""
    short = {k.lower(): v for k, v in DETECTORS.items()}
    path = short.get(name.replace("_", "").lower(), name)
    module_name, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr) if module_name else None
    except (ImportError, AttributeError):
        cls = None
    if not (inspect.isclass(cls) and issubclass(cls, RiverDriftDetector | BinaryDriftDetector)):
        raise ConfigError(f"detector={name!r} is unknown; allowed: {_ALLOWED}")
    return cls


class AnyOf(Trigger):
    """Fire when any of ``triggers`` fires (e.g. a drift detector with an accuracy floor)."""

    def __init__(self, triggers: list[Trigger]) -> None:
        if not triggers:
            raise ConfigError("triggers=[] is invalid; allowed: one trigger or more")
        self.triggers = triggers

    def observe(self, obs: Observation) -> None:
        for trigger in self.triggers:
            trigger.observe(obs)

    def fire(self) -> bool:
        return any([trigger.fire() for trigger in self.triggers])

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        for trigger in self.triggers:
            trigger.reset(deployed, reference)


class CostAware(Trigger):
    """Retrain when the accuracy lost since the last retrain is worth more than a retrain.

    The accuracy lost on a chunk is how far it fell below the best accuracy a deployed model
    has had right after its deployment (what a retrain has shown it can deliver); summed over
    the chunks since the last retrain it is the avoidable staleness. A retrain costs ``alpha``
    in the same units (chunks scored entirely wrong), so the trigger fires once
    ``Σ max(0, reference − accuracy_t) ≥ alpha``: a greedy reading of cost-aware retraining
    (Mahadevan & Mathioudakis, 2024), where total cost is staleness + α × retrains. Measuring
    from the best level, not the last, keeps a retrain that failed to recover from resetting
    the bar to its own low accuracy.

    Args:
        alpha: cost of one retrain relative to one chunk of errors.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        if alpha <= 0:
            raise ConfigError(f"alpha={alpha} is invalid; allowed: > 0")
        self.alpha, self._lost = alpha, 0.0
        self._reference: float | None = None

    def observe(self, obs: Observation) -> None:
        if self._reference is not None and obs.n:
            self._lost += max(0.0, self._reference - obs.accuracy)

    def fire(self) -> bool:
        return self._lost >= self.alpha

    def reset(self, deployed: bool, reference: float | None = None) -> None:
        self._lost = 0.0
        if deployed and reference is not None:
            self._reference = max(reference, self._reference or 0.0)


def _at_least(low: int, **values: int) -> None:
    for name, value in values.items():
        if value < low:
            raise ConfigError(f"{name}={value} is invalid; allowed: {low} or more")
