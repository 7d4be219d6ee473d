"""Exception classes of the data path.

Every message is ONE line (or one line per problem) that names the file, and the line number when
there is one, plus what was expected, so a user can fix the input without reading a traceback.
"""

from __future__ import annotations

from typing import Any


class DataFileError(ValueError):
    """An image, disparity, depth or mask file is missing, unreadable or has the wrong format."""


class AnnotationError(ValueError):
    """An annotation file is malformed or names files that do not exist.

    ``problems`` holds one ``"file:line: what"`` string per problem; the message is that single
    line when there is one problem, else a summary line ("3 problems in train.txt") followed by
    one line per problem.
    """

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = "\n".join([f"{len(self.problems)} problems in {source}", *self.problems])
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (e.g. from a DataLoader worker)
        return type(self), (self.problems, self.source)
