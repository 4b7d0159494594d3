"""What Markdown costs to render: Python-Markdown (what Mesa used) against markdown-it-py (what it uses),
on the pathological corpus (tests/markdown_corpus.py) at growing sizes and on the starter articles.

    .venv/bin/python bench/markdown_cost.py            # about a minute on 2 cores

For each pathological case and size: the CPU time of Python-Markdown (``extra`` + ``sane_lists``, as Mesa
had it; ``RecursionError`` where it raises; "> 10 s" where it was stopped; not run again at a larger size
once a case took it over a second), of markdown-it-py alone, and of
Mesa's rendering (markdown-it-py + budget + nh3, without the cache; "plain: over budget" / "plain: too
deep" when the budget or the nesting limit turned the text into plain text). Then the starter articles: time per article with
each library, and whether Mesa's new rendering has the same structure (tags and text) as the old one.

Python-Markdown is no longer a dependency of Mesa: install it to compare (``pip install Markdown==3.11.3``);
without it only the markdown-it-py columns are measured.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import indexer  # noqa: E402
from portal.domain import markdown_render  # noqa: E402
from tests.markdown_corpus import pathological_corpus  # noqa: E402

SIZES = (2_000, 8_000, 20_000)
STOP_AFTER_SECONDS = 10
OLD_TAGS = markdown_render.ALLOWED_TAGS | {"div", "span"}


class Stopped(Exception):
    """The render took longer than STOP_AFTER_SECONDS."""


def _stop(signum, frame):
    raise Stopped


def python_markdown():
    """Python-Markdown's render function as Mesa called it, or None when it is not installed."""
    try:
        import markdown
    except ImportError:
        return None
    return lambda text: markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")


def markdown_it():
    """markdown-it-py alone, configured as Mesa's renderer but without its budget."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "maxNesting": markdown_render.MAX_NESTING}).enable(
        ["table", "strikethrough"]).render


def timed(render, text: str) -> tuple[float | None, str]:
    """(CPU seconds or None when stopped, note) of one render, stopped after STOP_AFTER_SECONDS."""
    signal.signal(signal.SIGALRM, _stop)
    signal.setitimer(signal.ITIMER_REAL, STOP_AFTER_SECONDS)
    start = time.thread_time()
    try:
        render(text)
        return time.thread_time() - start, ""
    except Stopped:
        return None, f"> {STOP_AFTER_SECONDS} s"
    except RecursionError:
        return time.thread_time() - start, "RecursionError"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def mesa_render(text: str) -> tuple[float, str]:
    """(CPU seconds, why it was shown as plain text or "") of Mesa's rendering, without its cache."""
    start = time.thread_time()
    _html, outcome = markdown_render.render_with_outcome(text)
    return time.thread_time() - start, "" if outcome == "markdown" else f"plain: {outcome}"


def cell(seconds: float | None, note: str) -> str:
    """A table cell: milliseconds and the note."""
    if seconds is None:
        return note
    return f"{seconds * 1000:.1f} ms" + (f" {note}" if note else "")


def pathological_table(sizes, old) -> list[str]:
    """Markdown table rows of the pathological corpus."""
    new = markdown_it()
    rows = ["| case | chars | Python-Markdown | markdown-it-py | Mesa render_markdown |", "|---|---|---|---|---|"]
    slow: dict[str, str] = {}  # cases Python-Markdown took over a second on: not run again at a larger size
    for size in sizes:
        for name, text in pathological_corpus(size).items():
            if not old:
                old_cell = "-"
            elif name in slow:
                old_cell = f"not run ({slow[name]})"
            else:
                seconds, note = timed(old, text)
                old_cell = cell(seconds, note)
                if seconds is None or seconds > 1:
                    slow[name] = f"{old_cell} at {len(text)} chars"
            rows.append(f"| {name} | {len(text)} | {old_cell} | {cell(*timed(new, text))} | "
                        f"{cell(*mesa_render(text))} |")
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def structure(html: str) -> str:
    """HTML reduced to its tags and words, to compare two renderings of one article."""
    import nh3

    cleaned = nh3.clean(html, tags=OLD_TAGS, attributes={})
    return re.sub(r"\s+", " ", re.sub(r">\s+|\s+<", lambda m: m.group(0).strip(), cleaned)).strip()


def starter_report(old) -> list[str]:
    """Time per starter article with each library, and how many render to the same structure."""
    new = markdown_it()
    bodies = [article.body for article in indexer.read_articles(ROOT / "articles")]
    lines = [f"Starter articles: {len(bodies)}, {sum(map(len, bodies))} characters in all."]
    for label, render in (("Python-Markdown", old), ("markdown-it-py", new),
                          ("Mesa render_markdown", lambda t: mesa_render(t))):
        if render is None:
            continue
        times = [timed(render, body)[0] or 0.0 for body in bodies]
        lines.append(f"- {label}: median {statistics.median(times) * 1000:.2f} ms, "
                     f"max {max(times) * 1000:.2f} ms, all {sum(times) * 1000:.1f} ms")
    if old is not None:
        same, different = 0, []
        for article in indexer.read_articles(ROOT / "articles"):
            before = structure(markdown_render.sanitise(old(article.body)))
            after = structure(markdown_render.render_markdown(article.body))
            if before == after:
                same += 1
            else:
                different.append((article.slug, before, after))
        lines.append(f"- same structure (tags and text) with both: {same} of {len(bodies)}")
        for slug, before, after in different:
            at = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
            lines.append(f"  - {slug}: before …{before[max(0, at - 60):at + 80]}…")
            lines.append(f"    {' ' * len(slug)}  after  …{after[max(0, at - 60):at + 80]}…")
    return lines


def main() -> None:
    """Print both reports (Markdown) on stdout; progress on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    old = python_markdown()
    sys.setrecursionlimit(1000)  # Python's default, as in a web worker
    print("\n".join(starter_report(old)))
    print()
    print("\n".join(pathological_table(args.sizes, old)))


if __name__ == "__main__":
    main()
