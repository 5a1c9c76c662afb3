"""Text embeddings for activities (and, later, coach retrieval): 384 dimensions, L2-normalised.

Two providers behind one function. With OPENAI_API_KEY set, `OPENAI_EMBEDDING_MODEL` is asked for
384-dimension vectors. Without a key, a deterministic offline embedder hashes word tokens and
character trigrams into 384 signed buckets (the "hashing trick"): similar texts share features and
land close in cosine space, no network, no model download, same output on every machine.

One deployment must use one provider for every stored vector: vectors from the two providers live
in different spaces and must not be compared.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re

from django.conf import settings

_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Word tokens carry more meaning than trigrams; the weights keep both in play.
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5


def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimensions, (1.0 if (value >> 63) & 1 else -1.0)


def embed_text_offline(text: str, *, dimensions: int | None = None) -> list[float]:
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


def embedding_provider() -> str:
    return "openai" if settings.OPENAI_API_KEY else "offline"


def embed_texts(texts: list[str]) -> list[list[float]]:
    """One 384-dimension unit vector per text, from OpenAI when configured, else offline."""
    if not texts:
        return []
    if embedding_provider() == "openai":
        return _embed_openai(texts)
    return [embed_text_offline(text) for text in texts]
