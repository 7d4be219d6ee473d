"""Paths in words (one pattern for the request reader and the policy) and light typo repair."""

from __future__ import annotations

import pytest

from skillbank import policy, request
from skillbank.request_text import PATH_RE, closest_word, edit_distance, mask_paths, repair_typos


def test_one_path_pattern_serves_the_reader_and_the_policy() -> None:
    assert request.PATH_RE is PATH_RE and policy.mask_paths is mask_paths
    text = "train on /data/no_hpo and ./x, ~/y, ../z w/o HPO at 10 km/h"
    assert [m.group(1) for m in PATH_RE.finditer(text)] == ["/data/no_hpo", "./x", "~/y", "../z"]
    masked = mask_paths(text)
    assert len(masked) == len(text) and "no_hpo" not in masked and "w/o HPO" in masked


@pytest.mark.parametrize(
    ("typo", "word"),
    [
        ("sterio", "stereo"),
        ("evalute", "evaluate"),
        ("infrence", "inference"),
        ("deph", "depth"),
        ("exprot", "export"),
        ("trian", "train"),
        ("mnoo", "mono"),
        ("tnue", "tune"),
        ("monocluar", "monocular"),
        ("fondation", "foundation"),
        ("atuoml", "automl"),
        ("hyperparamter", "hyperparameter"),
    ],
)
def test_light_typos_of_planner_words_are_repaired(typo: str, word: str) -> None:
    fixed, fixes = repair_typos(f"please {typo} it")
    assert fixed == f"please {word} it" and fixes == [(typo, word)]


@pytest.mark.parametrize(
    "text",
    [
        "ask an expert", "follow the trail", "the moon rover", "the influence of crops", "a concert hall",
        "trading speed", "object tracking", "molecular data", "retain the best", "store it", "the inner loop",
        "death valley", "a relative path", "the tensor shape", "turning left", "tone mapping", "a tube",
        "training", "stereo", "evaluate", "data", "mode", "most", "test", "rain", "brain", "taint",
    ],
)  # fmt: skip
def test_ordinary_words_are_left_alone(text: str) -> None:
    assert repair_typos(text) == (text, [])


def test_paths_hyphens_and_distance() -> None:
    assert repair_typos("train on /data/sterio")[1] == []
    assert repair_typos("fine-tnue it") == ("finetune it", [("fine-tnue", "finetune")])
    assert repair_typos("depth-net-fast-sterio")[0] == "depth-net-fast-stereo"
    assert edit_distance("ab", "ba") == 1 and edit_distance("kitten", "sitting", cap=5) == 3
    assert edit_distance("abcdef", "uvwxyz", cap=2) == 3
    assert closest_word("xport", ["export"]) is None  # the first letter must match
    assert closest_word("fsat", ["fast"]) == "fast" and closest_word("fist", ["fast"]) is None
