"""Text rules shared by the request reader and the policy resolver: paths in words, and light typo repair.

Paths: :data:`PATH_PATTERN` finds absolute (``/data/x``), home (``~/x``) and relative (``./x``,
``../x``) paths in a sentence; :func:`mask_paths` blanks them (same length, so offsets keep) so a folder
named ``/runs/no_hpo/train`` is never read as a policy, a verb or a model.

Typos: :func:`repair_typos` replaces a word that is one edit (two for words of 8+ letters) away from a
planner word (model, action and AutoML words, plus the registry's action and architecture names) by that
word. Edits are insertions, deletions, substitutions and swaps of neighbours (optimal string alignment);
the first letter must match; a 4-letter word is repaired only by a swap ("mnoo", "tnue"); words under 4
letters are left alone. Ordinary English words that happen to lie that close ("expert", "trail",
"influence", "moon", "death", ...; :data:`COMMON_WORDS`) are never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

#: A path in a sentence (group 1). Not preceded by a word character, "/", "~" or "." so "w/o" and
#: "km/h" are not paths; ends at whitespace, a comma, a semicolon or a quote.
PATH_PATTERN = r"((?<![\w/~.])(?:~|\.{1,2})?/[^\s,;'\"]+)"
PATH_RE = re.compile(PATH_PATTERN)


def mask_paths(text: str, fill: str = " ") -> str:
    """``text`` with every path replaced by ``fill`` characters (same length, so offsets keep)."""
    return PATH_RE.sub(lambda m: fill * len(m.group(0)), text)


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


#: Words the planner's patterns look for (lower case; hyphens dropped, as in "finetune").
PLANNER_WORDS = word_set(
    """
    stereo foundation foundationstereo fastfoundationstereo monocular depth anything depthanything depthanythingv2
    mono fast tune train training retrain finetune finetuning evaluate evaluation evaluating inference infer
    predict predictions export convert engine tensorrt benchmark onnx automl hyperparameter hyperparameters
    hyperparams optimization optimisation optimize optimise tuning disparity
    """
)

#: Common English words within reach of a planner word (from an English word-frequency list): never repaired.
COMMON_WORDS = word_set(
    """
    concert convent covert death dept disparate evacuate evacuated evacuating evacuation evacuations evolution
    evolute exaltation exhort expert experts extort fats influence inner inter molecular moon perdition predation
    predilection production productions reactive refrain relate relating relation relive restive restrain retain
    tailing tainting tanning tensor toning tracing tracking trading trail trails trailing traipsing trait traits
    tramping trapping trashing trawling tubing turing turning twain tone tube june tuna stereos store
    """
)

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)?")


def edit_distance(a: str, b: str, cap: int = 2) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b``; anything above ``cap`` is ``cap + 1``."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > cap:
            return cap + 1
        prev2, prev = prev, row
    return min(prev[-1], cap + 1)


def _allowed(target: str) -> int:
    return 0 if len(target) <= 4 else 1 if len(target) <= 7 else 2


@lru_cache(maxsize=16)
def _index(vocabulary: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Vocabulary words by first letter."""
    index: dict[str, list[str]] = {}
    for word in sorted(vocabulary):
        index.setdefault(word[:1], []).append(word)
    return {letter: tuple(words) for letter, words in index.items()}


def closest_word(token: str, vocabulary: Iterable[str]) -> str | None:
    """The vocabulary word ``token`` is a light typo of, or None (exact words and common words: None)."""
    vocab = vocabulary if isinstance(vocabulary, frozenset) else frozenset(vocabulary)
    return _closest(token.lower(), vocab)


@lru_cache(maxsize=4096)
def _closest(word: str, vocab: frozenset[str]) -> str | None:
    if len(word) < 4 or word in COMMON_WORDS or word in vocab:
        return None
    best: tuple[int, str] | None = None
    for target in _index(vocab).get(word[0], ()):
        if abs(len(target) - len(word)) > 2:
            continue
        if len(target) <= 4:
            ok = len(word) == len(target) and sorted(word) == sorted(target) and edit_distance(word, target, 1) == 1
            dist = 1 if ok else 9
        else:
            dist = edit_distance(word, target, _allowed(target))
            ok = dist <= _allowed(target)
        if ok and (best is None or (dist, target) < best):
            best = (dist, target)
    return best[1] if best else None


def repair_typos(text: str, vocabulary: Iterable[str] = PLANNER_WORDS) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with light typos of planner words repaired (paths untouched), and the (typo, word) pairs."""
    vocab = vocabulary if isinstance(vocabulary, frozenset) else frozenset(vocabulary)
    known = vocab
    masked = mask_paths(text)
    fixes: list[tuple[str, str]] = []
    out: list[str] = []
    pos = 0
    for m in _WORD.finditer(masked):
        token = m.group(0)
        joined = token.replace("-", "").lower()
        parts = token.split("-")
        if joined in known or all(p.lower() in known for p in parts):
            continue
        # a hyphenated pair is tried whole ("fine-tnue" -> finetune), then part by part ("fast-sterio")
        whole = closest_word(joined, vocab) if "-" in token else None
        if whole is not None:
            out += [text[pos : m.start()], whole]
            fixes.append((token, whole))
            pos = m.end()
            continue
        offset = m.start()
        for part in parts:
            fixed = None if part.lower() in known else closest_word(part, vocab)
            if fixed is not None:
                out += [text[pos:offset], fixed]
                fixes.append((part, fixed))
                pos = offset + len(part)
            offset += len(part) + 1
    out.append(text[pos:])
    return "".join(out), fixes
