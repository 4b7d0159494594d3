"""Spanish or English: which language a text is in, and the words too common to search by."""

from __future__ import annotations

import re

LANGUAGES = ("es", "en")

# The commonest function words of each language: enough to tell Spanish from English in a short query.
_COMMON_WORDS = {
    "es": frozenset(
        "el la los las de del que y en un una por para con no se su al lo como más pero sus le ya o este "
        "sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos "
        "durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo "
        "otro otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas "
        "algunas algo nosotros mi mis tú te ti tu tus ellas puedo puede tengo tiene cómo está "
        "dónde cuándo cuál cuáles quién es son fue era".split()),
    "en": frozenset(
        "the of and to in a is that for it as was with be by on not he this are or his from at which but "
        "have an they you were her she there can all their has been if more when will would who so no "
        "my i me do does did cannot can't how what your we our am it's don't doesn't why where which "
        "won't isn't".split()),
}
_WORD_RE = re.compile(r"[a-záéíóúñü']+")


def detect_language(text: str, default: str = "en") -> str:
    """"es" or "en", by which language's common words (and Spanish letters) the text uses more.

    A text with no evidence either way (a single technical word such as "VPN") gets ``default``,
    which callers set to the best hint they have, e.g. the language of the user interface.
    """
    lowered = text.lower()
    words = _WORD_RE.findall(lowered)
    spanish = sum(word in _COMMON_WORDS["es"] for word in words) + 2 * sum(c in "ñ¿¡áéíóú" for c in lowered)
    english = sum(word in _COMMON_WORDS["en"] for word in words)
    if spanish == english:
        return default if default in LANGUAGES else "en"
    return "es" if spanish > english else "en"
