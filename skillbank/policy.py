"""The per-run ``automl_policy`` of a train request: ``auto`` or ``off``, and the phrase that decided it.

Resolution order:

1. An explicit value (tool-call field ``automl_policy``, CLI flag): ``auto`` or ``off``. Synonyms:
   ``on``/``enabled``/``true``/``yes`` mean auto; ``disabled``/``disable``/``none``/``no``/``false``/
   ``0``/``direct``/``plain`` mean off. Anything else is a :class:`PolicyError`.
2. The request's words. Off: "turn off AutoML", "AutoML turned off", "disable AutoML", "no HPO",
   "plain training", "without any hyperparameter search", "skip the HPO", "don't tune hyperparameters",
   "HPO: no", "sans HPO", "automl_policy: off", "HPO-free", "we don't need HPO", "w/o HPO", ...
   Auto: "use AutoML", "with HPO", "enable hyperparameter search", and HPO named as the task ("run HPO
   for ...", "tune the hyperparameters of ...", "hyperparameter search on ...", "sweep the lr"; the
   request reader uses :data:`HPO_REQUEST` to make such a request a train request).
3. Otherwise ``auto`` (source ``default``).

Rules for the words:

- Negation flips: "don't disable automl" and "not without HPO" mean auto; "don't use AutoML" and
  "never run HPO" mean off.
- "fine-tune" is training, never tuning: only "tune"/"tuning" not preceded by "fine" count.
- A clause about another run is not a policy for this one: clauses that mention the past or a
  comparison ("AutoML results from last week", "compare with HPO off last time", "like the previous
  run without automl") are ignored. So "compare with HPO off last time" alone leaves the default (auto);
  add "no HPO" to turn it off for this run.
- Clauses are split at . ; ! ? newlines, commas, "and", "but", "then"; when clauses disagree, the last
  one wins (people correct themselves: "use automl, actually no, plain training" is off).
- A clause that takes the previous policy phrase back without naming AutoML counts only when it says so
  plainly: "no HPO needed? actually do run it" is auto, "use automl? actually, don't" is off; "no hpo;
  run it on 2 gpus" stays off.
- Negations about other things do not count: "no augmentation" leaves the default.

The decision is per run: nothing here reads or writes skill metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from skillbank.request_text import mask_paths

Policy = Literal["auto", "off"]

AUTO_WORDS = {"auto", "on", "enable", "enabled", "true", "yes", "1", "automl", "default"}
OFF_WORDS = {"off", "disable", "disabled", "none", "no", "false", "0", "direct", "plain", "never", "skip"}


class PolicyError(ValueError):
    """An explicit automl_policy that is neither auto nor off (nor a synonym). One line."""


@dataclass(frozen=True)
class PolicyDecision:
    """``policy`` (auto | off), ``source`` (explicit | request | default) and the deciding ``phrase``."""

    policy: Policy
    source: str
    phrase: str | None = None

    def describe(self) -> str:
        """e.g. 'request: "no HPO"', 'explicit: "disabled"', 'default'."""
        return f'{self.source}: "{self.phrase}"' if self.phrase else self.source


def parse_explicit(value: str | bool | None) -> Policy | None:
    """Normalise an explicit policy value; None when not given. Raises :class:`PolicyError`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "auto" if value else "off"
    word = str(value).strip().lower().replace("-", "_")
    if word in ("", "null"):
        return None
    if word in AUTO_WORDS:
        return "auto"
    if word in OFF_WORDS:
        return "off"
    raise PolicyError(
        f"automl_policy: {value!r} is not a policy; use 'auto' or 'off' "
        "(off also: disabled, none, false; auto also: on, enabled, true)"
    )


# ------------------------------------------------------------------------------------ request wording
_NOT_FINE = r"(?<!fine-)(?<!fine )(?<!fine)"
_TERM = (
    r"(?:auto[\s-]?ml|h\.?p\.?o|hyper[\s-]?param(?:eter)?s?[\s-]+(?:optimi[sz]ations?|search(?:es|ing)?|tuning|"
    r"sweeps?|opt)|hparams?[\s-]+(?:search|tuning|sweeps?)|param(?:eter)?[\s-]+(?:search|sweeps?)|"
    r"(?:hyper[\s-]?param(?:eter)?\s+)?sweeps?|" + _NOT_FINE + r"tun(?:e|ing)\b|(?:the\s+)?search\b)"
)
_STRONG_TERM = (
    r"(?:auto[\s-]?ml|h\.?p\.?o|hyper[\s-]?param(?:eter)?s?[\s-]+(?:optimi[sz]ations?|search(?:es|ing)?|tuning|"
    r"sweeps?|opt)|hparams?[\s-]+(?:search|tuning|sweeps?))"
)
_FILL = r"(?:\s+(?:the|any|an?|some|all|with|of|using|for|running|doing|to)\b)*\s*"
_OFF_VERB = (
    r"(?:turn(?:ing|ed)?\s+off|switch(?:ing|ed)?\s+off|shut\s+off|disabl(?:e|ed|es|ing)|deactivat(?:e|ed|ing)|"
    r"skip(?:s|ped|ping)?|no|without|w/o|w/out|sans|bypass(?:ing)?|avoid(?:ing)?|omit(?:ting)?|forgo(?:ing)?|"
    r"exclud(?:e|ing)|drop(?:ping)?|ditch(?:ing)?|minus|opt(?:ing)?\s+out\s+of|no\s+need\s+(?:for|to\s+run)|"
    r"forget(?:ting)?(?:\s+about)?)"
)
_ON_VERB = (
    r"(?:use|using|enabl(?:e|ed|ing)|turn(?:ing)?\s+on|switch(?:ing)?\s+on|run(?:ning)?|do(?:ing)?|with|keep(?:ing)?|"
    r"want|try|launch|start|allow|perform)"
)
_OFF_VALUE = (
    r"(?:off|disabled|deactivated|skipped|false|none|no|nope|0|not\s+needed|not\s+required|not\s+wanted|unnecessary|"
    r"(?:turned|switched|kept|left|set)\s+off)"
)
_ON_VALUE = r"(?:on|enabled|auto|true|yes|(?:turned|switched|kept|left|set)\s+on)"
_VALUE_SEP = (
    r"(?:[_\s-]?policy)?(?:\s*(?:[=:]|->)\s*|\s+(?:is\s+|are\s+|(?:should|must|will|to)\s+(?:be|stay|remain)\s+|"
    r"stays?\s+|remains?\s+|set\s+to\s+|to\s+)?)"
)
_HP_OBJECT = r"(?:hyper[\s-]?param(?:eter)?s|hparams|lrs?|learning[\s-]rates?)"

#: HPO named as the thing to do ("run HPO for ...", "tune the hyperparameters of ...", "hyperparameter
#: search on ...", "optimize hyperparameters", "sweep the lr"): such a request is a train request with
#: AutoML on. Used by the request reader to pick the action (a negated hit is not a request).
HPO_REQUEST = re.compile(
    rf"\b(?:run|do|launch|start|perform|use|kick\s+off|try)\s+(?:an?\s+|the\s+|some\s+)?{_STRONG_TERM}"
    rf"|\b(?:optimi[sz]e|tune|search(?:\s+over)?|sweep(?:\s+over)?)\s+(?:the\s+|over\s+)?{_HP_OBJECT}"
    rf"|\bfind\s+(?:the\s+)?(?:best|optimal|good)\s+{_HP_OBJECT}"
    rf"|\b{_STRONG_TERM}\s+(?:on|for|of|over|with)\b|\bsweep\b|{_NOT_FINE}\btune\b"
    rf"|^\W*{_STRONG_TERM}\b(?![^.;,!?]{{0,24}}\b(?:off|no|not|none|false|disabled|0)\b)",
    re.I,
)

#: (pattern, policy it expresses when not negated), searched in each clause; earlier patterns win where
#: two read the same words.
_PATTERNS: list[tuple[re.Pattern[str], Policy]] = [
    (re.compile(rf"\b(?:turn|switch|set|keep|leave)\s+(?:the\s+)?{_TERM}\s+(?:off|out)\b", re.I), "off"),
    (re.compile(rf"\b(?:turn|switch|set)\s+(?:the\s+)?{_TERM}\s+on\b", re.I), "auto"),
    (re.compile(rf"\b{_OFF_VERB}\b{_FILL}{_TERM}", re.I), "off"),
    (re.compile(rf"\b{_TERM}{_VALUE_SEP}{_OFF_VALUE}\b", re.I), "off"),
    (re.compile(rf"\bnon[\s-]?{_STRONG_TERM}|\b{_STRONG_TERM}[\s-]free\b", re.I), "off"),
    (
        re.compile(
            r"\b(?:plain|direct|vanilla|simple|regular|normal|standard|ordinary|basic)\s+"
            r"(?:fine[\s-]?tun(?:e|ing)|train(?:ing)?|run|job)\b|\btrain(?:ing)?\s+directly\b|\bdirectly\s+train\b|"
            r"\bjust\s+(?:fine[\s-]?tune|train)\b|\bfixed\s+hyper[\s-]?param(?:eter)?s\b|\bsingle\s+(?:training\s+)?run\b",
            re.I,
        ),
        "off",
    ),
    (re.compile(rf"\b{_ON_VERB}\b{_FILL}{_TERM}", re.I), "auto"),
    (re.compile(rf"\b{_TERM}{_VALUE_SEP}{_ON_VALUE}\b", re.I), "auto"),
    (re.compile(r"(?<![/\w])no[-_]?(?:hpo|auto[-_]?ml)\b", re.I), "off"),
    (
        re.compile(
            rf"\b(?:optimi[sz]e|tune|search(?:\s+over)?|sweep(?:\s+over)?)\s+(?:the\s+|over\s+)?{_HP_OBJECT}"
            rf"|\bfind\s+(?:the\s+)?(?:best|optimal|good)\s+{_HP_OBJECT}",
            re.I,
        ),
        "auto",
    ),
    (re.compile(rf"\b{_STRONG_TERM}", re.I), "auto"),  # a bare mention: "HPO for fast stereo", "we don't need HPO"
    (re.compile(rf"{_NOT_FINE}\btun(?:e|ing)\b", re.I), "auto"),  # bare "tune": "don't tune" is off
]

_TAKE_BACK_COMMA = re.compile(r"\b(actually|wait|on\s+second\s+thought)\s*,", re.I)  # "actually, don't" is one clause

#: A clause that takes back the previous policy phrase without naming AutoML again: "no HPO needed?
#: actually do run it" (auto), "use automl, actually don't" (off). Only read after a policy phrase, and
#: only when the clause ends there ("actually, run it on 4 GPUs" is about the run, not AutoML).
_TAKE_BACK: list[tuple[re.Pattern[str], Policy]] = [
    (
        re.compile(
            r"(?:\b(?:actually|on\s+second\s+thought|after\s+all|wait)\b.*\b(?:run|use|enable|keep|want|do)|"
            r"\bdo\s+(?:run|use|enable|want))\s+(?:it|that|them|one)(?:\s+(?:after\s+all|anyway|please|too))?\W*$",
            re.I,
        ),
        "auto",
    ),
    (
        re.compile(
            r"\b(?:actually|on\s+second\s+thought|wait)\b[\s,]*(?:no|don'?t|do\s+not|not|skip\s+it|drop\s+it)"
            r"(?:\s+(?:do\s+it|it|that|please|thanks))?\W*$",
            re.I,
        ),
        "off",
    ),
]

_NEGATOR = re.compile(
    r"\b(?:don'?t|do\s+not|does\s+not|doesn'?t|never|not|won'?t|shouldn'?t|should\s+not|no\s+need\s+to|"
    r"please\s+don'?t|avoid|stop)\b",
    re.I,
)
_OTHER_RUN = re.compile(
    r"\b(?:last\s+(?:time|week|month|run|year|night)|previous(?:ly)?|earlier|yesterday|before|compar(?:e|ed|ing|ison)|"
    r"vs\.?|versus|results?\s+(?:from|of)|history|was|were|had)\b",
    re.I,
)
_CLAUSE_SPLIT = re.compile(r"[.;!?\n,]+|\s+(?:and|but|then|however|although)\s+", re.I)


@dataclass(frozen=True)
class _Hit:
    start: int
    policy: Policy
    phrase: str


def _negated(prefix: str) -> bool:
    """True when the words just before a match negate it (odd number of negators in the last 4 words)."""
    words = " ".join(prefix.split()[-4:])
    return len(_NEGATOR.findall(words)) % 2 == 1


def _hits(clause: str, offset: int) -> list[_Hit]:
    found: list[_Hit] = []
    taken: list[tuple[int, int]] = []
    for pattern, policy in _PATTERNS:
        for m in pattern.finditer(clause):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue  # an earlier (more specific) pattern already read these words
            taken.append((m.start(), m.end()))
            negated = _negated(clause[: m.start()])
            phrase = (
                clause[max(0, m.start() - _prefix_len(clause[: m.start()])) : m.end()].strip()
                if negated
                else m.group(0)
            )
            flipped: Policy = ("auto" if policy == "off" else "off") if negated else policy
            found.append(_Hit(offset + m.start(), flipped, phrase.strip()))
    return found


def _prefix_len(prefix: str) -> int:
    """Characters of the negating words before a match (to quote them in the phrase)."""
    starts = [m.start() for m in _NEGATOR.finditer(prefix)]
    return len(prefix) - starts[-1] if starts else 0


def decide_from_text(text: str) -> PolicyDecision | None:
    """The policy the request's words express, or None when they express none."""
    text = mask_paths(text)  # a folder named no_hpo/ is not a policy
    text = _TAKE_BACK_COMMA.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
    hits: list[_Hit] = []
    pos = 0
    for part in _CLAUSE_SPLIT.split(text):
        offset = text.find(part, pos)
        pos = offset + len(part) if offset >= 0 else pos
        if not part.strip() or _OTHER_RUN.search(part):
            continue
        found = _hits(part, max(offset, 0))
        if not found and hits:
            found = [
                _Hit(max(offset, 0) + m.start(), policy, m.group(0).strip())
                for pattern, policy in _TAKE_BACK
                if (m := pattern.search(part))
            ][:1]
        hits += found
    if not hits:
        return None
    last = max(hits, key=lambda h: h.start)
    return PolicyDecision(last.policy, "request", " ".join(last.phrase.split()))


def resolve_automl_policy(explicit: str | bool | None = None, request_text: str | None = None) -> PolicyDecision:
    """Explicit value first, then the request's words, else auto. Raises :class:`PolicyError`."""
    value = parse_explicit(explicit)
    if value is not None:
        return PolicyDecision(value, "explicit", str(explicit))
    if request_text:
        decided = decide_from_text(request_text)
        if decided is not None:
            return decided
    return PolicyDecision("auto", "default")
