"""The README and the manual under docs/: every relative link and image points at a file that exists, and
every #anchor (on the same page or another Markdown page) at one of that page's headings.

Fast and self-contained: no TensorFlow, no training. Links inside fenced code blocks and inline code
spans are not links; http(s)://, mailto: links are not checked. Anchors are GitHub's heading slugs:
lower case, punctuation dropped, spaces to hyphens, a repeated heading numbered -1, -2, ...
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


def anchors(text):
    """The #anchors GitHub gives a Markdown text's headings (outside fenced code)."""
    found, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(page):
    """(page, target) for each relative link of page whose file or folder does not exist, or whose #anchor names
    no heading of the Markdown page it points to."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        path, _, anchor = target.split("?", 1)[0].partition("#")
        linked = page.parent / path if path else page
        if not linked.exists():
            broken.append((page.relative_to(ROOT).as_posix(), target))
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append((page.relative_to(ROOT).as_posix(), target))
    return broken


def test_anchors_are_githubs_heading_slugs():
    text = "# `train-cnn`: the card's CNN\n## Results (3 seeds)\n## Results (3 seeds)\n```\n# not a heading\n```\n"
    assert anchors(text) == {"train-cnn-the-cards-cnn", "results-3-seeds", "results-3-seeds-1"}


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


def test_every_results_page_opens_with_what_it_found_and_says_when():
    """The lab notebook's pages (docs/results/, not its index): an `**In short:**` paragraph right under the title
    and navigation, and the date of the measurement somewhere on the page."""
    for page in sorted((ROOT / "docs" / "results").glob("*.md")):
        if page.name == "README.md":
            continue
        text = page.read_text(encoding="utf-8")
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        assert any(p.lstrip().startswith("**In short:**") for p in paragraphs[:4]), f"{page.name}: no In short"
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", text), f"{page.name}: no date"
