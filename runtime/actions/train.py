"""depth_net train (not implemented in this build yet)."""

from __future__ import annotations

from ..context import ActionContext, ActionResult
from ..errors import NotImplementedActionError


def run(ctx: ActionContext) -> ActionResult:
    raise NotImplementedActionError("depth_net train is not available in this build yet")
