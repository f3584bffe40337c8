"""The learned router's model file: its format, and the one reader that checks all of it.

A model file is JSON, gzip-compressed or not (the reader looks at the first two bytes)::

    {"format": "octoroute-routing-model", "version": 1,
     "scheme": "octoroute-features/2", "spec": {"head": 240, ...},
     "tiers": ["fast", "balanced", "deep"],
     "bias": [b_fast, b_balanced, b_deep],
     "weights": {"sig": {"code": [w_fast, w_balanced, w_deep], ...}, "w": {...}, ...},
     "temperature": 0.64,
     "cost": [[0, 1, 2], [1.5, 0, 1], [4.5, 3, 0]],
     "training": {...}}

``weights`` maps a namespace of :mod:`~octoroute.routing.features` to its keys' weight
vectors, one weight per tier. ``temperature`` divides the scores before the softmax (fitted on
out-of-fold predictions, so the probabilities are calibrated). ``cost[expected][chosen]`` is what
choosing a tier costs when another one was right: the decision is the tier with the least
expected cost. ``training`` records how the file was made (rows, seed, options, the
cross-validated results) and is not read for deciding.

:func:`read_model_file` refuses anything else with a :class:`ModelFileError` whose message says
what is wrong and what to do, so a bad ``[routing] model_file`` is a line in ``octoroute check``'s
report, never a traceback. Only the file is read here: no network, no numpy.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import msgspec

from octoroute.enums import TIERS
from octoroute.routing.features import NAMESPACES, SCHEME, SPEC_LIMITS, FeatureSpec

SHIPPED_MODEL: Final = "default.json.gz"
"""The file name of the shipped model in ``octoroute/routing/models/``."""
FORMAT: Final = "octoroute-routing-model"
VERSION: Final = 1
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
"""A shipped model is a few hundred KiB; more than this is the wrong file."""
MAX_WEIGHT: Final = 1e6
"""A weight or bias past this is not something training makes: the file is damaged."""

Vector = tuple[float, float, float]


class ModelFileError(ValueError):
    """A model file cannot be used; the message names the file and says what to do."""


class ModelData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checked model file, as read."""

    format: str
    version: int
    scheme: str
    spec: dict[str, int]
    tiers: tuple[str, ...]
    bias: Vector
    weights: dict[str, dict[str, Vector]]
    temperature: float
    cost: tuple[Vector, Vector, Vector]
    training: dict[str, Any] = msgspec.field(default_factory=dict)

    def feature_spec(self) -> FeatureSpec:
        """The extraction bounds the model was trained with."""
        return FeatureSpec(**self.spec)


class _Header(msgspec.Struct):
    """What is read first, so a file of another format or version gets the right message."""

    format: str | None = None
    version: int | None = None
    scheme: str | None = None


_HEADER: Final = msgspec.json.Decoder(_Header)
_MODEL: Final = msgspec.json.Decoder(ModelData)
_RETRAIN: Final = "retrain it with `octoroute train` (see docs/routing.md)"


def shipped_model_path() -> Path:
    """The model shipped inside the installed package, used when ``model_file`` is not set."""
    return Path(str(resources.files("octoroute.routing") / "models" / SHIPPED_MODEL))


def read_model_file(path: str | os.PathLike[str]) -> ModelData:
    """The model in the file ``path``, checked from end to end; :class:`ModelFileError` if not.

    A file is read once per version (path, modification time, size): the config check and the
    router that uses the model share one copy.
    """
    where = os.fspath(path)
    try:
        stat = os.stat(where)
    except OSError:
        return _read_model(where)  # words the error
    return _read_cached(where, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_cached(where: str, mtime_ns: int, size: int) -> ModelData:
    del mtime_ns, size  # the cache key: a rewritten file is read again
    return _read_model(where)


def _read_model(where: str) -> ModelData:
    raw = _read(where)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ModelFileError(
                f"{where}: the gzip data is truncated or corrupt ({error}); copy the file again "
                f"or {_RETRAIN}"
            ) from None
    return parse_model(raw, where)


def parse_model(raw: bytes, where: str = "<model>") -> ModelData:
    """Check and decode the JSON bytes of a model file (``where`` names it in messages)."""
    try:
        header = _HEADER.decode(raw)
    except msgspec.DecodeError as error:
        raise ModelFileError(
            f"{where}: not a model file: the JSON is truncated or invalid ({error}); copy the "
            f"file again or {_RETRAIN}"
        ) from None
    if header.format != FORMAT:
        raise ModelFileError(
            f"{where}: not an octoroute routing model (format {header.format!r}, expected "
            f"{FORMAT!r}); give the path of a file written by `octoroute train`"
        )
    if header.version != VERSION:
        raise ModelFileError(
            f"{where}: model file version {header.version!r}, this octoroute reads version "
            f"{VERSION}; {_RETRAIN}"
        )
    if header.scheme != SCHEME:
        raise ModelFileError(
            f"{where}: trained with feature scheme {header.scheme!r}, this octoroute computes "
            f"{SCHEME!r}; {_RETRAIN}"
        )
    try:
        data = _MODEL.decode(raw)
    except msgspec.ValidationError as error:
        raise ModelFileError(f"{where}: damaged model file: {error}; {_RETRAIN}") from None
    problem = _problem(data)
    if problem is not None:
        raise ModelFileError(f"{where}: damaged model file: {problem}; {_RETRAIN}")
    return data


def _read(where: str) -> bytes:
    try:
        size = Path(where).stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelFileError(
                f"{where}: {size} bytes is too large for a routing model (at most "
                f"{MAX_FILE_BYTES // (1024 * 1024)} MiB); is this the right file?"
            )
        return Path(where).read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{where}: file not found; check the path") from None
    except IsADirectoryError:
        raise ModelFileError(f"{where}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFileError(
            f"{where}: permission denied; check that the user running octoroute can read it"
        ) from None
    except OSError as error:
        raise ModelFileError(f"{where}: cannot read the file: {error.strerror or error}") from None


def _problem(data: ModelData) -> str | None:
    """What is wrong with a decoded model, or ``None``."""
    if data.tiers != tuple(tier.value for tier in TIERS):
        return f"tiers {list(data.tiers)} are not {[tier.value for tier in TIERS]}"
    spec_problem = _spec_problem(data.spec)
    if spec_problem is not None:
        return spec_problem
    unknown = sorted(set(data.weights) - set(NAMESPACES))
    if unknown:
        return f"unknown feature namespaces {unknown}"
    if not (math.isfinite(data.temperature) and 0.01 <= data.temperature <= 100):
        return f"temperature {data.temperature!r} is not between 0.01 and 100"
    for expected, row in enumerate(data.cost):
        for chosen, value in enumerate(row):
            if not (math.isfinite(value) and 0 <= value <= MAX_WEIGHT):
                return f"cost[{expected}][{chosen}] = {value!r} is not a non-negative number"
        if row[expected] != 0:
            return f"cost[{expected}][{expected}] must be 0 (the right tier costs nothing)"
    if not all(math.isfinite(b) and abs(b) <= MAX_WEIGHT for b in data.bias):
        return f"a bias is not a number between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
    for namespace, table in data.weights.items():
        for key, vector in table.items():
            if not all(math.isfinite(w) and abs(w) <= MAX_WEIGHT for w in vector):
                return (
                    f"the weights of {namespace}:{key!r} are not numbers between "
                    f"-{MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
                )
    return None


def _spec_problem(spec: dict[str, int]) -> str | None:
    fields = FeatureSpec._fields
    missing = [name for name in fields if name not in spec]
    extra = sorted(set(spec) - set(fields))
    if missing or extra:
        return f"spec keys {sorted(spec)} are not {list(fields)}"
    for name, limit in zip(fields, SPEC_LIMITS, strict=True):
        value = spec[name]
        if not 0 <= value <= limit:
            return f"spec.{name} = {value} is outside 0..{limit}"
    return None


def encode_model(data: ModelData, *, compress: bool = True) -> bytes:
    """The file bytes of ``data``: JSON with sorted keys, one entry a line, gzip-compressed
    without a timestamp when ``compress``, so the same model is the same bytes on every run."""
    body = msgspec.json.format(msgspec.json.encode(data, order="sorted"), indent=0)
    return gzip.compress(body, compresslevel=9, mtime=0) if compress else body
