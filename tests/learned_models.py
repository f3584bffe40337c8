"""Small hand-written learned models for tests: their decisions and confidences are known."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from octoroute.routing.features import DEFAULT_SPEC, SCHEME, FeatureSpec
from octoroute.routing.learned import LearnedModel
from octoroute.routing.model_file import FORMAT, VERSION, ModelData, encode_model
from octoroute.routing.train import cost_matrix

Vector = tuple[float, float, float]

SURE_FAST: Vector = (8.0, 0.0, -8.0)
"""With a word that occurs once in its namespace: fast with a probability above 0.999."""
UNSURE: Vector = (0.0, 0.2, 0.0)
"""A word that leaves the model between the tiers: balanced with a probability about 0.38."""
SURE_DEEP: Vector = (-8.0, 0.0, 8.0)

GREETINGS: Final = ("hi there", "hello!", "thanks a lot", "good morning", "hey, thanks", "cheers")
FUNCTIONS: Final = (
    "write a python function that merges two sorted lists",
    "write a function to parse a csv file in go",
    "write a rust function that reverses a linked list",
    "write a javascript function that debounces a callback",
    "write a function that validates an email address",
    "write a java function that computes a checksum",
)
PROOFS: Final = (
    "prove that there are infinitely many primes",
    "prove that the square root of 2 is irrational",
    "prove that every tree with n vertices has n-1 edges",
    "prove the triangle inequality for complex numbers",
    "prove that a bounded monotone sequence converges",
    "prove that there is no largest prime, rigorously",
)
"""Three kinds of request, six phrasings each: fast, balanced (acceptable fast) and deep."""


def model_data(
    words: Mapping[str, Vector] | None = None,
    *,
    weights: Mapping[str, Mapping[str, Vector]] | None = None,
    bias: Vector = (0.0, 0.0, 0.0),
    temperature: float = 1.0,
    under_cost: float = 3.0,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> ModelData:
    """A valid model whose only weights are ``words`` (namespace ``w``) and ``weights``."""
    tables = {namespace: dict(table) for namespace, table in (weights or {}).items()}
    if words:
        tables.setdefault("w", {}).update(words)
    return ModelData(
        format=FORMAT,
        version=VERSION,
        scheme=SCHEME,
        spec=dict(spec._asdict()),
        tiers=("fast", "balanced", "deep"),
        bias=bias,
        weights=tables,
        temperature=temperature,
        cost=cost_matrix(under_cost),
    )


def tiny_model(**options: object) -> LearnedModel:
    """:func:`model_data` as a :class:`LearnedModel`."""
    return LearnedModel(model_data(**options))  # type: ignore[arg-type]


def write_model(path: Path, data: ModelData, *, compress: bool = True) -> Path:
    """``data`` as a model file at ``path``."""
    path.write_bytes(encode_model(data, compress=compress))
    return path
