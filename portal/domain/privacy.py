"""Personal data out of text that is kept for reports or published: e-mail addresses, phone numbers, names.

One scrubber for every place that keeps people's words beyond their ticket: promotion of a ticket to an
article, and the self-service funnel's questions.
"""

from __future__ import annotations

import re
from typing import Iterable

from .models import User

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Phone numbers, and the technical numbers that look like them. One scan, left to right: at each place the
# first alternative that matches wins, so a date, time, IP address or version is consumed (and kept) before
# its digits could be read as a phone number.
PHONE_RE = re.compile(r"""
    (?P<phone>(?<![\w.])\(?\d{3}\)?\.\d{3}\.\d{4}(?![.\d]))   # 555.123.4567 (before versions)
  | (?P<keep>\d{4}[-/]\d{1,2}[-/]\d{1,2}(?!\d)                 # 2024-03-15
      | \d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)                 # 15/03/2024, 15-03-24, 15.03.2024
      | \d{1,2}:\d{2}(?::\d{2})?(?!\d)                       # 10:30, 10:30:45
      | (?:19|20)\d\d\ ?[-\u2013]\ ?(?:19|20)\d\d(?!\d)        # 2023-2024
      | \d+(?:\.\d+)+)                                       # 192.168.10.25, 10.0.19045.3803, 2.5
  | (?P<number>(?<![\w.+/-])                                # not inside a word, number, path or id
      (?:\+[\ \u00a0]?\(?\d[\d\ \u00a0().-]{5,}\d              # +34 612 345 678, +44 (20) 7946.0958
        | \(?\d[\d\ \u00a0()-]{5,}\d)                          # (555) 123-4567, 612 34 56 78
      (?:,?[\ \u00a0]?(?:ext|extension|extensi\u00f3n|x)\.?[\ \u00a0]?\d{1,6})?  # ext. 4411
      (?![\w/]|[.:-]\d))
  | (?P<extension>\b(?:ext|extension|extensi\u00f3n)\.?[\ \u00a0]?\d{3,6}\b)  # ext. 4411 on its own
""", re.VERBOSE | re.IGNORECASE)
MIN_PHONE_DIGITS = 7


def scrub_text(text: str, names: Iterable[str] = (), asset_tags: Iterable[str] = ()) -> str:
    """E-mail addresses as "[e-mail]", phone numbers as "[phone]", these asset tags as "[asset tag]" and these
    names (whole words, any case) as "[name]"."""
    text = EMAIL_RE.sub("[e-mail]", text)
    text = remove_phone_numbers(text)
    for tag in sorted((t for t in set(asset_tags) if t), key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(tag)}(?!\w)", "[asset tag]", text, flags=re.IGNORECASE)
    for name in sorted((n for n in set(names) if len(n) >= 3), key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "[name]", text, flags=re.IGNORECASE)
    return text


def person_names(user: User | None) -> set[str]:
    """The ways a text may name this person: full name, each part of it, the e-mail's local part."""
    if user is None:
        return set()
    return {user.name, *user.name.split(), user.email.split("@")[0]}


def remove_phone_numbers(text: str) -> str:
    """Phone numbers (and extensions) as "[phone]"; dates, times, IP addresses and versions are kept."""
    def replace(match: re.Match) -> str:
        if match["keep"] or (match["number"] and len(re.sub(r"\D", "", match["number"])) < MIN_PHONE_DIGITS):
            return match[0]
        return "[phone]"

    return PHONE_RE.sub(replace, text)
