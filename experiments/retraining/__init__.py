"""Which retraining policy to use on a drifting stream."""
