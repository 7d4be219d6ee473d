"""skillbank: an open skill bank and GPU runtime for depth estimation.

The agent-facing core (spec models, registry, automl_policy resolution, request planning) imports no
torch; the heavy runtime lives in :mod:`skillbank.runtime` and is imported only by its actions.
``skillbank.Client`` (the jobs SDK, :mod:`skillbank.sdk`) is a lazy attribute: SQLAlchemy loads only
when a Client is made.
"""

__version__ = "0.1.0"

__all__ = ["Client", "__version__", "list_skills", "plan"]


def __getattr__(name: str):  # noqa: ANN202 - lazy SDK surface: `import skillbank` stays light
    if name == "plan":
        from skillbank.router import plan

        return plan
    if name == "Client":
        from skillbank.sdk import Client

        return Client
    if name == "list_skills":
        from skillbank.registry import list_skills

        return list_skills
    raise AttributeError(f"module 'skillbank' has no attribute {name!r}")
