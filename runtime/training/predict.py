"""Moved to :mod:`skillbank.runtime.prediction.predict` (evaluate/inference preparation is not training);
these names stay importable from here."""

