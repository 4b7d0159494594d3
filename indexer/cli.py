"""Command line: ``python -m indexer build|query|info|eval``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .articles import ArticleFormatError, read_articles
from .embedders import BACKENDS, make_embedder
from .index import IndexProblem, KnowledgeIndex


def _add_embedder_options(parser: argparse.ArgumentParser, default_backend: str | None = "use") -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=default_backend,
                        help="embedding backend (default: %(default)s)")
    parser.add_argument("--model", default="",
                        help="sentence-transformers model name or local path (default: bundled all-MiniLM-L6-v2)")


def cmd_build(args) -> int:
    """Index a directory of articles into one index file."""
    articles = [a for a in read_articles(args.articles) if a.status == "published"]
    index = KnowledgeIndex.create(make_embedder(args.backend, args.model))
    index.build(articles, progress=not args.quiet)
    index.save(args.out)
    info = index.info()
    print(f"Indexed {info['articles']} articles as {info['chunks']} chunks with "
          f"{info['backend']} / {info['model']} in {info['build_seconds']} s -> {args.out}")
    return 0


def cmd_query(args) -> int:
    """Search a saved index with the embedder it was built with."""
    meta = KnowledgeIndex.read_info(args.index)
    index = KnowledgeIndex.load(args.index, make_embedder(meta["backend"], meta["model"]))
    for rank, hit in enumerate(index.search(args.text, k=args.k, lang=args.lang), 1):
        section = f" > {hit.heading}" if hit.heading else ""
        print(f"{rank}. [{hit.score:.3f}] {hit.slug} ({hit.lang}) {hit.title}{section}")
        print(f"   {hit.snippet}")
    return 0


def cmd_info(args) -> int:
    """Print the metadata saved beside an index."""
    print(json.dumps(KnowledgeIndex.read_info(args.index), indent=2, ensure_ascii=False))
    return 0


def cmd_eval(args) -> int:
    """Evaluate retrieval on a benchmark pack."""
    from .evaluate import evaluate_pack

    result = evaluate_pack(args.pack, make_embedder(args.backend, args.model))
    print(f"{result['pack']}: {result['articles']} articles, {result['queries']} queries, "
          f"config {result['config']}")
    print(f"  Recall@1 {result['recall@1']:.3f}  Recall@5 {result['recall@5']:.3f}  "
          f"MRR@10 {result['mrr@10']:.3f}  latency p50 {result['latency_ms']['p50']} ms "
          f"p95 {result['latency_ms']['p95']} ms")
    if args.json:
        print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its four sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="index a directory of Markdown articles")
    build.add_argument("articles", type=Path, help="directory of <slug>.md articles (or a bench pack)")
    build.add_argument("--out", type=Path, default=Path("instance/index.npz"), help="index file to write")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_embedder_options(build)
    build.set_defaults(func=cmd_build)

    query = sub.add_parser("query", help="search an index")
    query.add_argument("index", type=Path)
    query.add_argument("text")
    query.add_argument("-k", type=int, default=5)
    query.add_argument("--lang", choices=("es", "en"))
    query.set_defaults(func=cmd_query)

    info = sub.add_parser("info", help="show an index's metadata")
    info.add_argument("index", type=Path)
    info.set_defaults(func=cmd_info)

    evaluate = sub.add_parser("eval", help="measure retrieval on a benchmark pack")
    evaluate.add_argument("pack", type=Path, help="pack directory (articles/ and queries.jsonl)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    _add_embedder_options(evaluate)
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; problems are reported on stderr with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ArticleFormatError, IndexProblem, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
