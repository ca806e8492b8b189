"""Label-free statistical anomaly detection: causal scores from robust statistics and extreme-value tails.

Not in the live default detector list; add ``AnomalyDetector`` to opt in."""
from detectors.anomaly.detector import AnomalyDetector, tier_for
from detectors.anomaly.score import FIRE_SCORE, AnomalyScorer, score

__all__ = ["AnomalyDetector", "AnomalyScorer", "FIRE_SCORE", "score", "tier_for"]
