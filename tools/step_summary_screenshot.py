"""Screenshot a stage's step summary as GitHub renders it (approximately) for the docs.

    python tools/step_summary_screenshot.py SUMMARY.md docs/images/step-summary.png

SUMMARY.md is the file a stage wrote to $GITHUB_STEP_SUMMARY. The Markdown is rendered
with `markdown` (PyPI, tables extension) into a page styled like GitHub's job summary and
captured by Debian's Chromium (headless, through Playwright; /usr/bin/chromium or
$CHROMIUM). Emoji need a font: apt-get install fonts-noto-color-emoji.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import markdown
from playwright.sync_api import sync_playwright

STYLE = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
       font-size: 14px; color: #1f2328; background: #fff; margin: 0; padding: 24px; }
.summary { border: 1px solid #d1d9e0; border-radius: 6px; padding: 16px 24px; width: 760px; }
.title { font-weight: 600; color: #59636e; margin-bottom: 8px; }
h3 { font-size: 1.25em; margin: 8px 0 16px; }
code { background: #eff1f3; border-radius: 6px; padding: .2em .4em; font-size: 85%; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
blockquote { color: #59636e; border-left: .25em solid #d1d9e0; margin: 0; padding: 0 1em; }
"""


def main(source: Path, target: Path) -> None:
    body = markdown.markdown(source.read_text(encoding="utf-8"), extensions=["tables"])
    page_html = (
        f"<html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"
        f"<div class='summary'><div class='title'>uat summary</div>{body}</div></body></html>"
    )
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(device_scale_factor=1)
        page.set_content(page_html)
        page.locator(".summary").screenshot(path=str(target))
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
