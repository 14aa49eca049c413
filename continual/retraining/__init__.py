"""Retraining policies on a live stream: when to retrain, how, and whether to deploy."""

from continual.retraining.gate import Decision, DeployGate, negative_flip_rate
from continual.retraining.monitor import Monitor, mmd_permutation_test
from continual.retraining.pipeline import RetrainStep
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
    "DriftDetector", "DriftingChunks", "EveryK", "FullHistory", "Incremental", "Monitor",
    "Never", "NewSamples", "Observation", "Policy", "PolicyRun", "QualityGate",
    "QualityReport", "RecencyWeighted", "RetrainStep", "SlidingWindow", "StepRecord",
    "TimeOrdered", "Trigger", "Update", "chunked", "mmd_permutation_test", "negative_flip_rate",
    "simulate",
]
