"""Signals: the playbook's setups and six-scenario classifier over the analytics (pure)."""

from perpscope.signals._common import Evidence, MarketData, Signal
from perpscope.signals.scenarios import SCENARIOS, ScenarioReading, classify
from perpscope.signals.setups import DETECTORS, detect_all

__all__ = [
    "DETECTORS",
    "SCENARIOS",
    "Evidence",
    "MarketData",
    "ScenarioReading",
    "Signal",
    "classify",
    "detect_all",
]
