"""Moved to :mod:`skillbank.runtime.prediction.predict` (evaluate/inference preparation is not training);
these names stay importable from here."""

from skillbank.runtime.prediction.predict import (  # noqa: F401
    _fast_path,
    is_engine,
    predict_batch,
    prepare_model,
    prepare_run,
    unique_output_names,
)
