"""Text embeddings for activity search and coach retrieval: 256 dimensions, L2-normalised.

Three embedders behind one function (`EMBEDDING_PROVIDER`, docs/coach.md "Embeddings"):
- `wordllama` (the offline default): WordLlama's `l2_supercat` model, static token embeddings
  distilled from large language models, mean-pooled. Its 256-d weights and tokenizer ship inside the
  `wordllama` wheel and are loaded from the installed package with downloads disabled: nothing is
  fetched at run time. It captures meaning ("chicken salad" is near "grilled poultry with greens").
- `openai` (the default when OPENAI_API_KEY is set): `OPENAI_EMBEDDING_MODEL` asked for
  `dimensions=256` (text-embedding-3 models shorten their vectors on request).
- `hashing`: a deterministic hashed bag of words + character trigrams. No model at all; matches
  words, not meaning. Kept as the baseline of the retrieval test and the speed benchmark.

One deployment stores vectors of one embedder only: vectors of two embedders live in different
spaces and must not be compared. `embedding_space()` names the space; `manage.py embed_activities`
records it and re-embeds everything when it changes (activities.services.embedding_space_sync).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from pathlib import Path

from django.conf import settings

EMBEDDERS = ("wordllama", "openai", "hashing")
WORDLLAMA_CONFIG = "l2_supercat"  # the model whose weights the wheel ships (l2_supercat_256.safetensors)
WORDLLAMA_DIMENSIONS = 256
HASHING_VERSION = "hashing-v1"

_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Word tokens carry more meaning than trigrams; the weights keep both in play.
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5


# --- Hashing ----------------------------------------------------------------------------------------


def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimensions, (1.0 if (value >> 63) & 1 else -1.0)


def embed_text_hashing(text: str, *, dimensions: int | None = None) -> list[float]:
    """Deterministic hashed bag of words + character trigrams, L2-normalised (zero text -> zero vector)."""
    dimensions = dimensions or settings.EMBEDDING_DIMENSIONS
    vector = [0.0] * dimensions
    counts: dict[str, float] = {}
    for word in _TOKEN_RE.findall(text.lower()):
        counts[f"w:{word}"] = counts.get(f"w:{word}", 0.0) + _WORD_WEIGHT
        padded = f"^{word}$"
        for i in range(len(padded) - 2):
            trigram = f"t:{padded[i : i + 3]}"
            counts[trigram] = counts.get(trigram, 0.0) + _TRIGRAM_WEIGHT
    for feature, weight in counts.items():
        index, sign = _bucket(feature, dimensions)
        # Sub-linear term frequency: a word repeated ten times is not ten times as important.
        vector[index] += sign * (1.0 + math.log(weight)) if weight >= 1 else sign * weight
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


# --- WordLlama (offline, meaning) ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def wordllama_model():
    """The WordLlama model from the files inside the installed package (~0.3 s, once per process).

    `cache_dir` points at the package itself: WordLlama looks for `<cache_dir>/tokenizers/<file>`,
    which is where the wheel puts the tokenizer (its own "project root" lookup uses another folder
    name and would fall through to a download). `disable_download` makes a missing file an error.
    """
    import wordllama  # lazily: ~0.2 s of imports that the openai and hashing embedders never need

    return wordllama.WordLlama.load(
        config=WORDLLAMA_CONFIG,
        dim=WORDLLAMA_DIMENSIONS,
        cache_dir=Path(wordllama.__file__).parent,
        disable_download=True,
    )


def _unit_rows(matrix) -> list[list[float]]:
    """The rows of a numpy matrix scaled to length 1; an all-zero row (empty text) stays all zero."""
    norms = (matrix * matrix).sum(axis=1, keepdims=True) ** 0.5
    return (matrix / (norms + (norms == 0))).tolist()


def embed_texts_wordllama(texts: list[str]) -> list[list[float]]:
    if len(texts) == 0:
        return []
    # Normalised here, not by WordLlama: its own norm divides an empty text's zero vector by zero.
    return _unit_rows(wordllama_model().embed(texts, norm=False, batch_size=64))


# --- OpenAI -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _openai_client(api_key: str, base_url: str, timeout_s: float):
    """One client per configuration: building one costs ~60 ms (TLS context, connection pool)."""
    from openai import OpenAI  # lazily: importing openai costs ~0.4 s and the offline default never needs it

    return OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s)


def _embed_openai(texts: list[str]) -> list[list[float]]:
    client = _openai_client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.COACH_TIMEOUT_S)
    response = client.embeddings.create(
        model=settings.OPENAI_EMBEDDING_MODEL, input=texts, dimensions=settings.EMBEDDING_DIMENSIONS
    )
    return [list(item.embedding) for item in sorted(response.data, key=lambda item: item.index)]


# --- The one entry point ------------------------------------------------------------------------------


def embedding_provider() -> str:
    """EMBEDDING_PROVIDER, with `auto` resolved: openai when OPENAI_API_KEY is set, else wordllama."""
    choice = settings.EMBEDDING_PROVIDER
    if choice == "auto":
        return "openai" if settings.OPENAI_API_KEY else "wordllama"
    return choice


def embedding_space() -> str:
    """The name of the vector space the configured embedder writes (stored vectors must share it)."""
    provider = embedding_provider()
    dimensions = settings.EMBEDDING_DIMENSIONS
    if provider == "openai":
        return f"openai:{settings.OPENAI_EMBEDDING_MODEL}:{dimensions}"
    if provider == "hashing":
        return f"{HASHING_VERSION}:{dimensions}"
    return f"wordllama:{WORDLLAMA_CONFIG}:{WORDLLAMA_DIMENSIONS}"


def embed_texts_with(provider: str, texts: list[str]) -> list[list[float]]:
    """One unit vector per text from the named embedder (benchmarks and the retrieval test compare them)."""
    if not texts:
        return []
    if provider == "openai":
        return _embed_openai(texts)
    if provider == "hashing":
        return [embed_text_hashing(text) for text in texts]
    if provider == "wordllama":
        return embed_texts_wordllama(texts)
    raise ValueError(f"unknown embedder {provider!r}; expected one of {', '.join(EMBEDDERS)}")


def embed_texts(texts: list[str]) -> list[list[float]]:
    """One EMBEDDING_DIMENSIONS unit vector per text from the configured embedder."""
    return embed_texts_with(embedding_provider(), texts)
