"""The README and the manual under docs/: every relative link and image points at a file that exists.

Fast and self-contained: no TensorFlow, no training. Links inside fenced code blocks and inline code
spans are not links; http(s)://, mailto: and pure #anchor links are not checked; a #fragment is
stripped from a path before it is looked up relative to the page.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 220

# [text](target) and ![alt](target), target up to the first space or ')' (an optional "title" may follow)
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
# <img src="target"> and <a href="target"> in the Markdown's HTML
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
EXTERNAL = ("http://", "https://", "mailto:")


def doc_pages():
    """README.md and every Markdown page under docs/."""
    pages = [ROOT / "README.md"]
    docs = ROOT / "docs"
    if docs.is_dir():
        pages += sorted(docs.rglob("*.md"))
    return pages


def link_targets(text):
    """Every link target of a Markdown text, outside fenced code and code spans."""
    targets, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = CODE_SPAN.sub("", line)
        targets += MARKDOWN_LINK.findall(line) + HTML_LINK.findall(line)
    return targets


def broken_links(page):
    """(page, target) for each relative link of page whose file or folder does not exist."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue
        if not (page.parent / path).exists():
            broken.append((page.relative_to(ROOT).as_posix(), target))
    return broken


def test_link_parser_sees_links_and_images_but_not_code():
    text = (
        "See [a](docs/a.md#part), ![b](fig/b.png \"title\") and <img src=\"c.png\" width=\"9\">.\n"
        "Not these: `[x](code.md)`, [web](https://example.com), [top](#top).\n"
        "```\n[y](fenced.md)\n```\n"
    )
    assert link_targets(text) == ["docs/a.md#part", "fig/b.png", "c.png", "https://example.com", "#top"]


def test_readme_and_docs_have_no_broken_links():
    pages = doc_pages()
    assert (ROOT / "README.md").is_file()
    broken = [pair for page in pages for pair in broken_links(page)]
    assert not broken, "broken links (page, target):\n" + "\n".join(
        "  %s -> %s" % pair for pair in broken)


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        "README.md has %d lines (at most %d): move details into docs/" % (lines, README_MAX_LINES))
