"""How well and how fast gateway.desk.reader reads texts.

    .venv/bin/python bench/reader_bench.py [--reads N]

Prints the accuracy of intents and amounts on the project's sample texts
(tests/data/sms-examples.tsv) and on tests/data/sms_labelled.tsv with the rows it gets
wrong; on sms_unseen.tsv, sms_unseen_extra.tsv and sms_blind.tsv (per split; held-out
rows are scored, never listed), and on the later blind sets sms_blind2.tsv,
sms_blind3.tsv, sms_blind4.tsv and sms_blind5.tsv; and the throughput of `read` on one core over N reads
(default 200,000) of the labelled texts in turn, of whole 160-character texts, and of
texts labelled "other", which the rules leave to the intent model.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.desk import intent_model  # noqa: E402
from gateway.desk.reader import read  # noqa: E402

SAMPLES = REPO / "tests" / "data" / "sms-examples.tsv"
LABELLED = REPO / "tests" / "data" / "sms_labelled.tsv"
UNSEEN = REPO / "tests" / "data" / "sms_unseen.tsv"
UNSEEN_EXTRA = REPO / "tests" / "data" / "sms_unseen_extra.tsv"
BLIND = REPO / "tests" / "data" / "sms_blind.tsv"
# Written later by other writers who never saw the reader (tests/desk/test_reader.py).
MORE_BLIND = [REPO / "tests" / "data" / f"sms_blind{n}.tsv" for n in (2, 3, 4, 5)]
MODEL = REPO / "gateway" / "desk" / "data" / intent_model.MODEL_FILE


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def accuracy(name: str, rows: list[dict], show_wrong: bool = True) -> None:
    intents = amounts = 0
    by_intent: dict[str, list[int]] = {}
    wrong = []
    for row in rows:
        r = read(row["text"])
        want = int(row["amount"]) if row["amount"].strip() else None
        intents += r.intent == row["intent"]
        tally = by_intent.setdefault(row["intent"], [0, 0])
        tally[0] += r.intent == row["intent"]
        tally[1] += 1
        amounts += r.amount == want
        if r.intent != row["intent"] or r.amount != want:
            wrong.append(f"    {row['text']!r}: want {row['intent']} {want}, "
                         f"got {r.intent} {r.amount}")
    n = len(rows)
    print(f"{name}: {n} texts, intent {intents}/{n} ({100 * intents / n:.1f}%), "
          f"amount {amounts}/{n} ({100 * amounts / n:.1f}%)")
    print("    by intent: " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(by_intent.items())))
    for line in wrong if show_wrong else ():
        print(line)


def throughput(texts: list[str], reads: int) -> None:
    """Texts per second of CPU time (one thread, so one core) and of wall time; on a busy
    machine the CPU figure is the one that says what the reader costs."""
    count = len(texts)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(reads):
        read(texts[i % count])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"throughput: {reads} reads, {reads / cpu:,.0f} texts/s of CPU time "
          f"({cpu:.2f} s), {reads / wall:,.0f} texts/s of wall time ({wall:.2f} s); "
          f"{count} distinct texts, mean {sum(map(len, texts)) / count:.0f} chars")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200_000)
    args = parser.parse_args()
    accuracy(f"samples ({SAMPLES.name})", load(SAMPLES))
    labelled = load(LABELLED)
    accuracy(f"labelled ({LABELLED.name})", labelled)
    unseen = load(UNSEEN)
    accuracy(f"unseen dev ({UNSEEN.name})", [r for r in unseen if r["split"] == "dev"], False)
    # Held-out rows are scored, never listed: the rules are not written against them.
    accuracy(f"unseen held-out ({UNSEEN.name})",
             [r for r in unseen if r["split"] == "heldout"], False)
    accuracy(f"unseen extra ({UNSEEN_EXTRA.name})", load(UNSEEN_EXTRA), False)
    for path in (BLIND, *MORE_BLIND):
        blind = load(path)
        for split in ("dev", "heldout"):
            accuracy(f"blind {split} ({path.name})", [r for r in blind if r["split"] == split],
                     False)
    started = time.perf_counter()
    intent_model.read_file(MODEL)
    print(f"intent model: {MODEL.stat().st_size // 1024} KiB, loaded in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    texts = [row["text"] for row in labelled]
    throughput(texts, args.reads)
    # Whole 160-character SMS, several labelled texts run together.
    long_texts = [" ".join(texts[i:i + 12])[:160] for i in range(0, len(texts), 3)]
    throughput(long_texts, args.reads // 4)
    # Texts that mean nothing the shop acts on: the rules leave them unread, so the
    # intent model reads each of them too (gateway/desk/intent_model.py).
    unread = [r["text"] for path in (UNSEEN, BLIND, *MORE_BLIND) for r in load(path)
              if r["intent"] == "other"]
    throughput(unread, args.reads // 4)


if __name__ == "__main__":
    main()
