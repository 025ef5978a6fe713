"""Words, not keys: what a person reads names categories and statuses in words; the machine
keys stay data (reconciliation.csv, rma.csv) and class names."""
from email import message_from_bytes, policy
from html.parser import HTMLParser

from builders import DEMO_MONTH

from pipelines.cli import main

KEYS = ("TRUE_UP", "QUOTE_REQUIRED", "NOT_COVERED", "NO_DATA", "WATCH", "BREACH", "quote_only",
        "unclassified")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang, self.text, self.hidden = None, [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        self.hidden += tag in ("style", "script")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("style", "script")

    def handle_data(self, data):
        if not self.hidden:  # a style sheet's class names are not read
            self.text.append(data)


def test_english_pages_show_words_not_keys(full_demo):
    pages = {}
    for page in (full_demo[0] / "reports").rglob("*.html"):
        parser = _Text()
        parser.feed(page.read_text(encoding="utf-8"))
        if parser.lang == "en":
            pages[page.name] = " ".join(parser.text)
    assert pages, "the demo renders English pages"
    shown = {name: [key for key in KEYS if key in text] for name, text in pages.items()}
    assert {name: keys for name, keys in shown.items() if keys} == {}


def test_the_machine_files_keep_their_keys(full_demo):
    csv = (full_demo[0] / "reports" / "2026-10" / "reconciliation.csv").read_text()
    assert "TRUE_UP" in csv
    assert "QUOTE_REQUIRED" in csv


def test_e_mails_in_every_language_show_words_not_keys(demo_copy):
    """The demo's last month approved: every message (subject, text and HTML) in words."""
    assert main(["approve", "--month", DEMO_MONTH, "--home", str(demo_copy)]) == 0
    shown = {}
    for path in (demo_copy / "outbox" / DEMO_MONTH).glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [message["Subject"], *(message.get_body((kind,)).get_content()
                                       for kind in ("plain", "html"))]
        shown[path.name] = [key for key in KEYS if any(key in part for part in parts)]
    assert len(shown) >= 10, "the demo's month has reports and alerts to send"
    assert any(name.startswith(("true_up-", "rma-")) for name in shown)
    assert {name: keys for name, keys in shown.items() if keys} == {}
