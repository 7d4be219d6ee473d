"""skillbank: an open skill bank and GPU runtime for depth estimation.

The agent-facing core (spec models, registry, automl_policy resolution, request planning) imports no
torch; the heavy runtime lives in :mod:`skillbank.runtime` and is imported only by its actions.
"""

__version__ = "0.1.0"
