"""Command line: ``python -m indexer build|query|info|eval|tune|calibrate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .articles import ArticleFormatError, read_articles
from .embedders import make_embedder, make_embedders
from .index import IndexProblem, KnowledgeIndex
from .ranking import DEFAULT_RANKING, RANKINGS, get_ranking


def _add_ranking_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", choices=RANKINGS, default=DEFAULT_RANKING,
                        help="ranking configuration (default: %(default)s)")
    parser.add_argument("--model", default="",
                        help="sentence-transformers model name or local path (default: the bundled "
                             "all-MiniLM-L6-v2, int8 on ONNX Runtime; all-MiniLM-L6-v2: the same on torch)")


def cmd_build(args) -> int:
    """Index a directory of articles into one index file."""
    articles = [a for a in read_articles(args.articles) if a.status == "published"]
    ranking = get_ranking(args.config)
    index = KnowledgeIndex.create(ranking, make_embedders(ranking, args.model))
    index.build(articles, progress=not args.quiet, release_models=True)  # this process only builds
    index.save(args.out)
    info = index.info()
    print(f"Indexed {info['articles']} articles as {info['chunks']} chunks with the {ranking.name} ranking "
          f"({index.signature()}) in {info['build_seconds']} s -> {args.out}")
    return 0


def cmd_query(args) -> int:
    """Search a saved index with the embedder it was built with."""
    meta = KnowledgeIndex.read_info(args.index)
    embedders = {backend: make_embedder(backend, field["model"]) for backend, field in meta["fields"].items()}
    index = KnowledgeIndex.load(args.index, embedders)
    for rank, hit in enumerate(index.search(args.text, k=args.k, lang=args.lang), 1):
        section = f" > {hit.heading}" if hit.heading else ""
        confidence = "no calibration" if hit.confidence is None else f"confidence {hit.confidence:.2f}"
        print(f"{rank}. [{hit.score:.3f}, {confidence}] {hit.slug} ({hit.lang}) {hit.title}{section}")
        why = ", ".join(f"{name} {value:+.2f}" for name, value in hit.retrievers.items())
        keywords = f"; keywords: {', '.join(hit.keywords)}" if hit.keywords else ""
        print(f"   why: {why}{keywords}")
        print(f"   {hit.snippet}")
    return 0


def cmd_info(args) -> int:
    """Print the metadata saved beside an index."""
    print(json.dumps(KnowledgeIndex.read_info(args.index), indent=2, ensure_ascii=False))
    return 0


def cmd_eval(args) -> int:
    """Evaluate retrieval on a benchmark pack (optionally against the baselines)."""
    from .evaluate import evaluate_with_baselines, format_result, markdown_table

    results = []
    for pack in args.packs:
        result = evaluate_with_baselines(pack, args.config, args.model, compare=args.compare)
        results.append(result)
        print(format_result(result), flush=True)
    if args.table:
        print()
        print(markdown_table(results))
    if args.json:
        for result in results:
            print(json.dumps(result))
    return 0


def cmd_tune(args) -> int:
    """Choose a ranking's weights per language pair on benchmark packs, by MRR@10."""
    from .evaluate import tune_weights

    ranking = get_ranking(args.config)
    best = tune_weights(args.packs, ranking, make_embedders(ranking, args.model))
    for pair, found in best.items():
        weights = ", ".join(f"{name} {w:.2f}" for name, w in found["weights"].items())
        print(f"{pair}: {weights}  (MRR@10 {found['mrr@10']:.4f} on {found['pack']})")
    return 0


def cmd_calibrate(args) -> int:
    """Fit the confidence of a ranking on benchmark packs and save it for the next index build."""
    from .confidence import save_calibration
    from .evaluate import calibrate, format_confidence

    ranking = get_ranking(args.config)
    calibration, report = calibrate(args.packs, ranking, make_embedders(ranking, args.model))
    for figures in report:
        print(f"{figures['pack']} (held-out half): {format_confidence(figures)}")
    if args.dry_run:
        return 0
    path = save_calibration(calibration, ranking.name, args.out) if args.out else save_calibration(
        calibration, ranking.name)
    print(f"Saved the {ranking.name} confidence ({calibration.signature}, threshold {calibration.threshold}) "
          f"-> {path}; the next index build uses it.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="index a directory of Markdown articles")
    build.add_argument("articles", type=Path, help="directory of <slug>.md articles (or a bench pack)")
    build.add_argument("--out", type=Path, default=Path("instance/index.npz"), help="index file to write")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_ranking_options(build)
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
    evaluate.add_argument("packs", type=Path, nargs="+", metavar="pack",
                          help="pack directory (articles/ and queries.jsonl); several are evaluated in turn")
    evaluate.add_argument("--table", action="store_true",
                          help="end with a Markdown table of every pack, with the date and machine")
    evaluate.add_argument("--compare", action="store_true",
                          help="also run the baselines: bm25, and dense (plain sentence-transformers MiniLM, cosine)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object per pack on the last lines")
    _add_ranking_options(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    tune = sub.add_parser("tune", help="choose a ranking's weights per language pair on benchmark packs")
    tune.add_argument("packs", type=Path, nargs="+", help="pack directories")
    _add_ranking_options(tune)
    tune.set_defaults(func=cmd_tune)

    fit = sub.add_parser("calibrate", help="fit the confidence of a ranking's results on benchmark packs")
    fit.add_argument("packs", type=Path, nargs="+", help="pack directories")
    fit.add_argument("--out", type=Path, default=None, help="directory for <ranking>.json (default: the shipped one)")
    fit.add_argument("--dry-run", action="store_true", help="report only, save nothing")
    _add_ranking_options(fit)
    fit.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; problems are reported on stderr with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ArticleFormatError, IndexProblem, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
