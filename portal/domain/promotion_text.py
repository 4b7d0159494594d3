"""The text of a ticket made fit for an article: what to keep of the conversation, and how it reads.

Promotion drafts an article from a resolved ticket. A ticket is a conversation ("Hi, I am Ana...",
"we need more information", "Thanks, Luis"); an article is instructions for the next reader. This module:

- tells the replies that carry steps (a list of at least two items, or a code block) from conversational
  ones (questions, requests for information, acknowledgements), which stay out of the draft;
- cuts greetings, sign-offs and signatures from a text;
- puts a space between a Markdown link and a word it is glued to;
- turns the customer's first person into the reader's: English "I cannot" -> "You cannot", Spanish
  "No puedo conectarme" -> "No puede conectarse" (the usted form of Mesa's starter articles);
- names the placeholders of removed personal data in the article's language ("[teléfono]", not "[phone]").
"""

from __future__ import annotations

import re
from typing import Iterable

PLACEHOLDERS = {
    "en": {"[e-mail]": "[e-mail]", "[phone]": "[phone]", "[asset tag]": "[asset tag]", "[name]": "[name]"},
    "es": {"[e-mail]": "[correo]", "[phone]": "[teléfono]", "[asset tag]": "[etiqueta de inventario]",
           "[name]": "[nombre]"},
}

LIST_ITEM_RE = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*+•])\s+\S", re.MULTILINE)
CODE_BLOCK_RE = re.compile(r"^\s*(?:```|~~~)", re.MULTILINE)
MIN_STEPS = 2

GREETING_RE = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hola|buenos días|buenos dias|buenas tardes|"
    r"buenas noches|buenas|estimad[oa]s?)\b[^\n]{0,60}[,:!.]?\s*$", re.IGNORECASE)
SIGN_OFF_RE = re.compile(
    r"^\s*(?:thanks?(?: you)?(?: (?:so|very) much)?|many thanks|thank you in advance|regards|best(?: regards)?|"
    r"kind regards|cheers|br|gracias(?: de antemano| por (?:todo|tu ayuda|su ayuda))?|muchas gracias|"
    r"un saludo|saludos(?: cordiales)?|atentamente|un abrazo|quedo a la espera[^\n]*|"
    r"quedamos a la espera[^\n]*)\s*[,.!:]?\s*$", re.IGNORECASE)
SIGNATURE_DELIMITER_RE = re.compile(r"^--\s*$")
INLINE_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon)|hola|buenos días|buenos dias|buenas tardes|buenas)\b"
    r"[^,.:!\n]{0,40}[,.:!]\s*", re.IGNORECASE)
INTRODUCTION_RE = re.compile(r"(?:^|(?<=[.!?]\s))(?:i am|i'm|i’m|my name is|this is|soy|me llamo)\s+\[name\]"
                             r"[^.!?\n]*[.!?]?\s*", re.IGNORECASE)
LINK_GLUED_BEFORE_RE = re.compile(r"(?<=[\w.,;:!?)])(\[[^\]\n]+\]\([^)\s]+\))")
LINK_GLUED_AFTER_RE = re.compile(r"(\[[^\]\n]+\]\([^)\s]+\))(?=\w)")


def carries_steps(text: str) -> bool:
    """Whether a reply holds steps someone can follow: a list of at least two items, or a code block."""
    return len(LIST_ITEM_RE.findall(text)) >= MIN_STEPS or bool(CODE_BLOCK_RE.search(text))


def strip_conversation(text: str, names: Iterable[str] = ()) -> str:
    """The text without its greeting line, sign-off and signature: everything from a signature delimiter
    (``--``) or a sign-off line ("Thanks,", "Un saludo") on, and trailing lines that are only a name."""
    names = {n.casefold() for n in names if n}
    lines = text.replace("\r\n", "\n").strip().split("\n")
    while lines and (GREETING_RE.match(lines[0]) or not lines[0].strip()):
        lines.pop(0)
    if lines:
        lines[0] = INLINE_GREETING_RE.sub("", lines[0], count=1)
    for index, line in enumerate(lines):
        if index > 0 and (SIGNATURE_DELIMITER_RE.match(line) or SIGN_OFF_RE.match(line)):
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or lines[-1].strip(" ,.").casefold() in names
                     or lines[-1].strip() == "[name]"):
        lines.pop()
    return "\n".join(lines).strip()


def drop_introduction(text: str) -> str:
    """Without the sentence in which the customer introduces themselves ("I am [name] (...).", "Soy
    [name]."): run after their name was replaced by the placeholder."""
    return INTRODUCTION_RE.sub("", text).strip()


CONTACT_REQUEST_RE = re.compile(
    r"(?:^|(?<=[.!?]\s)|(?<=\n))[^.!?\n]*(?:\b(?:call|contact|email|e-mail|ring|text|reach|phone|write to) me\b|"
    r"\b(?:ll[aá]m[ae]me|llamadme|ll[aá]menme|escr[ií]beme|escribidme|contact[aá]dme|cont[aá]ctame|"
    r"cont[aá]ctenme|me pod[eé]is llamar|me puedes llamar|me pueden llamar)\b)[^.!?\n]*[.!?]?\s*",
    re.IGNORECASE)


def drop_contact_requests(text: str) -> str:
    """Without the sentences in which the customer asks to be called or written to ("Call me at ...",
    "Llamadme al ..."): nothing for an article's reader."""
    return CONTACT_REQUEST_RE.sub("", text).strip()


def unglue_links(text: str) -> str:
    """A space between a Markdown link and the word or punctuation glued to it on either side."""
    text = LINK_GLUED_BEFORE_RE.sub(r" \1", text)
    return LINK_GLUED_AFTER_RE.sub(r"\1 ", text)


def localise_placeholders(text: str, lang: str) -> str:
    """The placeholders of removed personal data ("[phone]", ...) in the article's language."""
    for english, local in PLACEHOLDERS.get(lang, PLACEHOLDERS["en"]).items():
        text = text.replace(english, local)
    return text


# ----- the reader's voice ------------------------------------------------------------------------------

ENGLISH_WORDS = {
    "i": "you", "i'm": "you're", "i’m": "you’re", "i've": "you've", "i’ve": "you’ve", "i'd": "you'd",
    "i’d": "you’d", "i'll": "you'll", "i’ll": "you’ll", "me": "you", "my": "your", "mine": "yours",
    "myself": "yourself",
}
ENGLISH_AFTER_I = {"am": "are", "was": "were", "wasn't": "weren't", "wasn’t": "weren’t"}
WORD_RE = re.compile(r"[A-Za-zÁÉÍÓÚÜÑáéíóúüñ’']+")

# Spanish first-person forms common in help-desk tickets, and their usted (third-person) form.
SPANISH_WORDS = {
    "mi": "su", "mis": "sus", "mío": "suyo", "mía": "suya", "conmigo": "consigo",
    "puedo": "puede", "tengo": "tiene", "estoy": "está", "soy": "es", "he": "ha", "hago": "hace", "sé": "sabe",
    "veo": "ve", "voy": "va", "quiero": "quiere", "necesito": "necesita", "intento": "intenta",
    "consigo": "consigue", "uso": "usa", "abro": "abre", "escribo": "escribe", "recibo": "recibe",
    "pruebo": "prueba", "pulso": "pulsa", "llamo": "llama", "entro": "entra", "accedo": "accede",
    "encuentro": "encuentra", "sigo": "sigue", "creo": "cree", "llevo": "lleva", "noto": "nota",
    "imprimo": "imprime", "envío": "envía", "mando": "manda", "enciendo": "enciende", "apago": "apaga",
    "conecto": "conecta", "desconecto": "desconecta", "reinicio": "reinicia", "cambio": "cambia",
    "olvido": "olvida", "pierdo": "pierde", "doy": "da", "digo": "dice", "pongo": "pone", "salgo": "sale",
    "vuelvo": "vuelve", "pido": "pide", "puse": "puso", "hice": "hizo", "tuve": "tuvo", "pude": "pudo",
    "fui": "fue", "estuve": "estuvo", "dije": "dijo", "vi": "vio", "quise": "quiso",
}
# After "me", these verbs take an indirect object ("me sale un error" -> "le sale un error"); any other
# verb is reflexive ("me conecto" -> "se conecta").
SPANISH_INDIRECT_VERBS = {
    "sale", "salen", "aparece", "aparecen", "da", "dan", "llega", "llegan", "deja", "dejan", "pide", "piden",
    "dice", "dicen", "funciona", "funcionan", "pasa", "pasó", "ocurre", "ocurrió", "salió", "apareció",
    "llegó", "dio", "dejó", "pidió", "dijo", "funcionó", "va", "van", "falla", "fallan", "carga", "cargan",
    "abre", "abren", "redirige", "muestra", "muestran", "envían", "envió", "mandan", "mandó", "bloquea",
    "bloqueó", "cuesta", "interesa", "gustaría", "han", "ha", "había", "habían", "piden",
}
SPANISH_NOT_PRETERITE = {"aquí", "allí", "así", "ahí", "esquí", "maniquí", "colibrí", "jabalí", "porqué",
                         "café", "bebé", "puré", "chalé", "canapé", "comité", "usted"}


def reader_voice(text: str, lang: str) -> str:
    """The customer's first person as the reader's: "you" in English, the usted form in Spanish."""
    return _spanish_voice(text) if lang == "es" else _english_voice(text)


def _english_voice(text: str) -> str:
    """I -> you, my -> your, I am -> you are (with a capital at the start of a sentence)."""
    previous = ""

    def replace(match: re.Match) -> str:
        nonlocal previous
        word, lowered = match.group(0), match.group(0).lower()
        if previous == "i" and lowered in ENGLISH_AFTER_I:
            result = ENGLISH_AFTER_I[lowered]
        elif lowered in ENGLISH_WORDS:
            result = ENGLISH_WORDS[lowered]
        else:
            result = word
        before = text[:match.start()].rstrip()
        if result != word and (not before or before[-1] in ".!?:\n"):
            result = result[:1].upper() + result[1:]
        previous = lowered
        return result

    return WORD_RE.sub(replace, text)


def _spanish_voice(text: str) -> str:
    """puedo -> puede, mi -> su, conectarme -> conectarse, me sale -> le sale, probé -> probó."""
    words = list(WORD_RE.finditer(text))
    out, last, capitalise_next = [], 0, False
    for index, match in enumerate(words):
        word, lowered = match.group(0), match.group(0).lower()
        following = words[index + 1].group(0).lower() if index + 1 < len(words) else ""
        if lowered == "yo":  # dropped with the space after it; "Yo puedo" -> "Puede"
            out.append(text[last:match.start()])
            last = match.end() + (text[match.end():match.end() + 1] == " ")
            capitalise_next = word[:1].isupper()
            continue
        if lowered == "me":
            result = "le" if following in SPANISH_INDIRECT_VERBS else "se"
        elif lowered in SPANISH_WORDS:
            result = SPANISH_WORDS[lowered]
        elif re.fullmatch(r"\w{2,}(?:ar|er|ir|ír|ando|iendo|ándo|iéndo)me", lowered):
            result = word[:-2] + "se"  # conectarme -> conectarse, intentándome -> intentándose
        elif len(lowered) >= 5 and lowered.endswith("é") and lowered not in SPANISH_NOT_PRETERITE:
            result = word[:-1] + "ó"  # probé -> probó
        elif len(lowered) >= 5 and lowered.endswith("í") and lowered not in SPANISH_NOT_PRETERITE:
            result = word[:-1] + "ió"  # perdí -> perdió
        else:
            result = word
        if capitalise_next or word[:1].isupper():
            result = result[:1].upper() + result[1:]
        capitalise_next = False
        out.append(text[last:match.start()] + result)
        last = match.end()
    out.append(text[last:])
    return "".join(out)
