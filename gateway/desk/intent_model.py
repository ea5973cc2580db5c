"""A statistical guess at a text's intent, for the texts the reader's rules leave unread.

The rules read keywords and plain free text precisely, but every new writer phrases
things they never saw ("mohon dicek sdh sy tf kmrn", "pls unsubscribe me"). A logistic
regression over the reader's canonical words, word pairs and letter triples/quadruples
(so a typo still shares most of its features) guesses those. It is trained from the
labelled texts in tests/data by tools/train_intent_model.py, with every held-out half
left out, and ships as data/intent_model.json.gz: one weight per feature and intent.

Reading a text costs a few dictionary lookups per feature; the weights load once, at
the first guess (bench/reader_bench.py prints how long that takes).
"""
from __future__ import annotations

import functools
import gzip
import json
import math
from importlib import resources

MODEL_FILE = "intent_model.json.gz"


def features(words: list[str], question: bool) -> list[str]:
    """The features of one text: `words` are the reader's canonical words, with "<num>",
    "<money>" or "<phone>" standing for the numbers; `question`: it asks something."""
    out = ["b:" + a + "_" + b for a, b in zip(["^", *words], [*words, "$"])]
    for w in words:
        out += _word_features(w)
    if question:
        out.append("?")
    return out


@functools.lru_cache(maxsize=8192)   # customers reuse a small vocabulary
def _word_features(word: str) -> tuple[str, ...]:
    """The word, and its letter triples and quadruples: a typo keeps most of them."""
    if word.startswith("<"):
        return ("w:" + word,)
    padded = "^" + word + "$"
    return ("w:" + word, *("c:" + padded[i:i + n] for n in (3, 4)
                           for i in range(len(padded) - n + 1)))


class IntentModel:
    def __init__(self, classes: list[str], intercepts: list[float],
                 weights: dict[str, list[float] | tuple[float, ...]]):
        self.classes = classes
        self.intercepts = intercepts
        self.weights = weights

    def guess(self, feats: list[str]) -> tuple[str, float]:
        """The likeliest intent and its probability."""
        scores = list(self.intercepts)
        for f in set(feats):
            row = self.weights.get(f)
            if row is not None:
                for i, w in enumerate(row):
                    scores[i] += w
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        best = exps.index(1.0)
        return self.classes[best], 1.0 / sum(exps)


def write(model: IntentModel, path, data_hash: str) -> None:
    # mtime=0 and sorted keys: the same data and weights give the same bytes.
    payload = json.dumps({"data_sha256": data_hash, "classes": model.classes,
                          "intercepts": model.intercepts, "weights": model.weights},
                         sort_keys=True, separators=(",", ":"))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(payload.encode())


def read_file(path) -> tuple[IntentModel, str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    # Tuples of floats: the collector stops tracking them, so 10,000 rows cost it nothing.
    weights = {feature: tuple(row) for feature, row in data["weights"].items()}
    return IntentModel(data["classes"], data["intercepts"], weights), data["data_sha256"]


@functools.cache
def shipped() -> IntentModel:
    """The model in the package, loaded at its first use."""
    with resources.as_file(resources.files("gateway.desk") / "data" / MODEL_FILE) as path:
        return read_file(path)[0]
