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


# Weights and intercepts are whole thousandths: sums of small ints are exact, Python adds
# them faster than floats, and most of them are the interpreter's cached small ints.
SCALE = 1000


class IntentModel:
    def __init__(self, classes: list[str], intercepts: list[int],
                 weights: dict[str, tuple[int, ...]]):
        self.classes = classes
        self.intercepts = tuple(intercepts)
        self.weights = weights

    def guess(self, feats: list[str]) -> tuple[str, float]:
        """The likeliest intent and its probability."""
        rows = [row for row in map(self.weights.get, set(feats)) if row is not None]
        rows.append(self.intercepts)
        scores = list(map(sum, zip(*rows)))   # one sum per intent, in C
        top = max(scores)
        exps = [math.exp((s - top) / SCALE) for s in scores]
        best = exps.index(1.0)
        return self.classes[best], 1.0 / sum(exps)


def write(model: IntentModel, path, data_hash: str) -> None:
    # The weights as one flat list of ints, row by row: the file loads in a third of the
    # time of one list of floats per feature. mtime=0 and sorted features: the same data
    # and weights give the same bytes.
    features = sorted(model.weights)
    payload = json.dumps({"data_sha256": data_hash, "scale": SCALE, "classes": model.classes,
                          "intercepts": list(model.intercepts), "features": features,
                          "weights": [w for f in features for w in model.weights[f]]},
                         separators=(",", ":"))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(payload.encode())


def read_file(path) -> tuple[IntentModel, str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if data.get("scale") != SCALE:
        raise ValueError(f"{path}: not an intent model of this version; retrain it")
    flat = iter(data["weights"])
    rows = zip(*[flat] * len(data["classes"]))   # consecutive groups of one row each
    return (IntentModel(data["classes"], data["intercepts"], dict(zip(data["features"], rows))),
            data["data_sha256"])


@functools.cache
def shipped() -> IntentModel:
    """The model in the package, loaded at its first use."""
    with resources.as_file(resources.files("gateway.desk") / "data" / MODEL_FILE) as path:
        return read_file(path)[0]
