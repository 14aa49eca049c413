"""Retraining policies on a live stream: when to retrain, how, and whether to deploy."""

from continual.retraining.gate import Decision, DeployGate, negative_flip_rate
from continual.retraining.policy import Policy
from continual.retraining.quality import QualityGate, QualityReport
from continual.retraining.simulate import PolicyRun, StepRecord, simulate
from continual.retraining.sources import ChunkSource, DriftingChunks, TimeOrdered, chunked
from continual.retraining.triggers import (
                                           AccuracyThreshold,
                                           AnyOf,
                                           CostAware,
                                           DriftDetector,
                                           EveryK,
                                           Never,
                                           NewSamples,
                                           Observation,
                                           Trigger,
)
from continual.retraining.updates import (
                                           FullHistory,
                                           Incremental,
                                           RecencyWeighted,
                                           SlidingWindow,
                                           Update,
)

__all__ = [
    "AccuracyThreshold", "AnyOf", "ChunkSource", "CostAware", "Decision", "DeployGate",
    "DriftDetector", "DriftingChunks", "EveryK", "FullHistory", "Incremental", "Never",
    "NewSamples", "Observation", "Policy", "PolicyRun", "QualityGate", "QualityReport",
    "RecencyWeighted", "SlidingWindow", "StepRecord", "TimeOrdered", "Trigger", "Update",
    "chunked", "negative_flip_rate", "simulate",
]
