"""AutoML runner (Optuna-backed) for AutoML-enabled skills."""
