"""What no rule explained (pure): the pleasantries, greetings and notes a sentence may be
without a human reading it, and what makes one salient (a question, a request, a
negation, a name, an address or a date not this event's)."""

from __future__ import annotations

import re

from mailbot.core.text import CAPITALS
from mailbot.reading.eventfacts import EventFacts
from mailbot.reading.sentences import F, has_any

THANKS = re.compile(r"\b(?:dank\w*|thanks?|thank you|merci)\b", F)


QUESTION_WORDS = ("ob", "nachfrag", "erkundig", "frage mich", "wissen", "whether", "wonder",
                   "know")


RELATIVE_WORDS = ("mein", "unser", "my ", "our ")
INSTRUCTION_WORDS = ("liste", "antwort", "reply", "hierhin", "hierher", "address")


REQUEST_WORDS = ("bitte", "sie", "please", "you", "kindly", "bescheid", "vous", "lütfen")
NEGATION_WORDS = ("nicht", "kein", "not", "never", "nie", "n't")
TITLE_WORDS = ("Frau", "Herr", "Mr", "Ms")


INDIRECT_QUESTION = re.compile(
    r"\b(?:(?:wissen|fragen|nachfragen|erfragen|klären|mitteilen|sagen|informieren|bescheid"
    r"|rückmeldung)\W+(?:\w+\W+){0,2}?ob"
    r"|nachfragen|erkundigen|frage mich|würde gerne? wissen|möchte (?:gerne? )?wissen"
    r"|whether|wonder|want to know|would like to know|let me know if)\b", F)
NEGATION = re.compile(r"\b(?:nicht|kein\w*|not|never|nie)\b|n't\b", F)


REQUEST = re.compile(
    r"\b(?:bitte|bitten|können sie|könnten sie|würden sie|wären sie|möchten sie|please|could you"
    r"|would you|can you|kindly|bescheid|schicken sie|senden sie|teilen sie|s'il vous pla[iî]t"
    r"|lütfen)\b", F)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
TITLED = re.compile(r"\b(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+(?:(?:Dr|Prof)\.\s*)*"
                    r"(?-i:[" + CAPITALS + r"])\w+")
RELATIVE = (r"(?:mein|meine|meinen|meinem|meiner|unser|unsere|unseren|unserem|unserer|my|our)"
             r"\s+(?:\w+\s+)?(?:Kolleg\w*|Mitarbeiter\w*|Chef\w*|Vorsitzende\w*|Vorstand\w*"
             r"|Mann|Frau|Ehemann|Ehefrau|Partner\w*|Sohn|Tochter|Vertret\w*|Nachfolger\w*"
             r"|Praktikant\w*|Leiter\w*|colleague\w*|husband|wife|partner|boss)\b")


NAMED_RELATIVE = re.compile(rf"\b{RELATIVE}\s+(?-i:[" + CAPITALS + r"])\w+", F)


_DELIVERY = (r"\b(?:link\w*|lien|zugangsdaten|einwahldaten|zoom[\w-]*|bestätigung"
             r"|anmeldebestätigung|einladung|unterlagen|details|access data)\b")
_SEND = r"\b(?:schick|send|zusend|zukommen|weiterleit|forward|mail|envoy)\w*"
_GREETING_LINE = re.compile(
    r"^\W*(?:hallo|hi|hey|moin|servus|guten (?:morgen|tag|abend)|liebe[rs]?|sehr geehrte[rs]?"
    r"|dear|hello|bonjour|merhaba|salut)\b[^.?]{0,60}$"  # a greeting alone
    r"|^\W*(?:Frau|Herr|Ms|Mr|Mrs)\.?\s+[\w-]+\W*$"
    r"|^\W*(?:hallo|hi|guten tag|liebe[rs]?|dear|hello)\s+(?:Frau|Herr|Ms|Mr|Mrs)\.?\s+"
    r"(?:(?:Dr|Prof)\.\s+)?[\w-]+(?:\s+[\w-]+)?\W*$", F)  # "Hallo Frau Collinet."
# the small talk of a greeting, asked of nobody who must answer it: "wie geht's dir?"
_SMALL_TALK = re.compile(
    r"^\W*(?:(?:und\s+)?wie\s+geht(?:'|’)?s(?:\s+(?:dir|euch|ihnen))?(?:\s+so)?(?:\s+denn)?"
    r"|(?:ich\s+)?darf\s+(?:ich\s+)?(?:doch\s+)?du\s+sagen|alles\s+(?:gut|klar)\s+bei\s+(?:dir|euch)"
    r"|how\s+are\s+you(?:\s+doing)?|hope\s+you\s+are\s+well)\W*\??\W*$", F)
_PLEASANTRY = re.compile(  # matched at the start of the sentence
    r"\W*(?:(?:mit )?(?:freundlich|best|herzlich|lieb|viel|schön|sonnig|sportlich)\w* )?"
    r"(?:grüße|grüßen|gruß|grüsse|gruss|regards|wishes)\b.{0,40}$"  # a closing
    r"|\W*(?:\S+\s+){0,4}(?:grüße|grüßen|gruß|grüsse|regards)\W*$"
    r"|\W*(?:mfg|lg|vg|cheers|ciao|tschüss|bis (?:dann|bald)|best)\b.{0,30}$"
    r"|\W*(?:von meinem|sent from my|gesendet (?:von|mit)|envoyé de mon)\b.{0,40}$"
    r"|\W*(?:super|prima|toll|perfekt|passt|alles klar|ok(?:ay)?|gut|great|perfect|wunderbar)"
    r"\W*$", F)
_KIND_WORDS = re.compile(r"\bfreuen? (?:mich|uns)\b|looking forward"
                         r"|schönen? (?:tag|wochenende|abend)|bleiben sie gesund", F)
_DELIVERY_RE = re.compile(_DELIVERY, F)
_SEND_RE = re.compile(_SEND, F)
INSTRUCTION = re.compile(  # a note for the list; "reply here"
    r"(?:ergänz|korrigier|änder|eintrag|trag)\w*.{0,40}(?:teilnehmerliste|liste)"
    r"|(?:teilnehmerliste|liste).{0,40}(?:ergänz|korrigier|änder|eintrag|trag)\w*"
    r"|\b(?:antworten|reply)\b.{0,30}\b(?:hierhin|hierher|diese adresse|this address)"
    r"|\b(?:hierhin|hierher|an diese adresse|to this address)\s+(?:antworten|reply)", F)
_PASSED_ON = (r"(?:weitergeleitet|weitergegeben|weitergereicht|zugeschickt|geschickt|bekommen"
              r"|erhalten|forwarded|forwarding|passed on|shared|received|got|sent)")
PROVENANCE = re.compile(  # where the invitation came from
    rf"\b(?:einladung|invitation)\b.{{0,80}}\b{_PASSED_ON}\b"
    rf"|\b{_PASSED_ON}\b.{{0,40}}\b(?:einladung|invitation)\b", F)
_NOT_TO_US = re.compile(  # his request to her to attend, a courtesy about forwarding
    r"\bmit der bitte\b(?=[^.?!]{0,100}\b(?:teilzunehmen|teil zu nehmen|dabei zu sein"
    r"|zu kommen|mitzumachen)\b)|\bkindly\s+(?=(?:forwarded|passed|shared|sent)\b)", F)


def is_explained(sentence: str, no_address: bool = False) -> bool:
    """A greeting, or a pleasantry with nothing a human must read in it, or an instruction
    for what we send anyway, or where the invitation came from (no question, no request).
    ``no_address``: the mail names no address at all — only then is "diese Adresse" the one
    she writes from."""
    if len(sentence) <= 90 and _GREETING_LINE.search(sentence):  # a greeting is short
        return True
    low = sentence.lower()
    if (_PLEASANTRY.match(sentence) or _KIND_WORDS.search(sentence)
            or THANKS.search(sentence)):
        return not salient(_NOT_TO_US.sub("", sentence), None)
    if len(sentence) <= 60 and has_any(low, _SMALL_TALK_WORDS) and _SMALL_TALK.match(sentence):
        return True
    if has_any(low, _DELIVERY_WORDS) and _DELIVERY_RE.search(sentence) \
            and _SEND_RE.search(sentence) and not ("@" in sentence
                                                   or _ELSEWHERE_TO.search(sentence)):
        return True  # how to send what we send anyway (also asked: "… den Zoom-Link?")
    if sentence.endswith("?"):
        return False
    if no_address and has_any(low, _THIS_WORDS) and _THIS_ADDRESS.search(sentence):
        return True  # "use this address for the access data": the one she writes from
    return bool((has_any(low, INSTRUCTION_WORDS) and INSTRUCTION.search(sentence)) or (
        has_any(low, ("einladung", "invitation")) and PROVENANCE.search(sentence)
        and not (has_any(low, REQUEST_WORDS) and REQUEST.search(_NOT_TO_US.sub("", sentence)))))


_SMALL_TALK_WORDS = ("geht", "du sagen", "bei dir", "bei euch", "how are", "hope you")
_DELIVERY_WORDS = ("link", "lien", "zugang", "einwahl", "zoom", "bestätig", "einladung",
                   "unterlagen", "details", "access")
_THIS_WORDS = ("diese", "this", "hierh")


# what we send anyway, asked for elsewhere than where she writes from, or more than it
_ELSEWHERE_TO = re.compile(r"\b(?:adresse|address|auch|also|zusätzlich|noch\s+einmal|andere\w*"
                           r"|other|vorab|in advance|beforehand|ausgedruckt|per post)\b", F)
# "nutzen Sie bitte diese Adresse", "den Link bitte an diese Adresse": the sender's own
_THIS_ADDRESS = re.compile(
    r"\b(?:diese[rs]?|this|hierhin|hierher)\s+(?:\w+-?)?(?:adresse|address|postfach|mailbox"
    r"|e-?mail)\b", F)


def salient(sentence: str, event: EventFacts | None) -> str:
    """What in a sentence a human must read, when no rule explained it: a question, a
    request, a negation, an address, a name, a date (not the event's own) — or ""."""
    low = sentence.lower()
    if "@" in sentence and _ADDRESS.search(sentence):
        return "Adresse"
    if sentence.endswith("?") or (has_any(low, QUESTION_WORDS)
                                  and INDIRECT_QUESTION.search(sentence)):
        return "Frage"
    if has_any(low, REQUEST_WORDS) and REQUEST.search(sentence):
        return "Bitte"
    if has_any(low, NEGATION_WORDS) and NEGATION.search(sentence):
        return "Verneinung"
    if (has_any(sentence, TITLE_WORDS) and TITLED.search(sentence)) or (
            has_any(low, RELATIVE_WORDS) and NAMED_RELATIVE.search(sentence)):
        return "Person"
    if event is not None and event.elsewhere(sentence, False):
        return "Datum"
    return ""


# each long pattern with the words tested before it (for speed); their test reads this
WORD_HINTS = ((INDIRECT_QUESTION, QUESTION_WORDS), (NAMED_RELATIVE, RELATIVE_WORDS),
              (_SMALL_TALK, _SMALL_TALK_WORDS), (_DELIVERY_RE, _DELIVERY_WORDS),
              (_THIS_ADDRESS, _THIS_WORDS),
              (INSTRUCTION, INSTRUCTION_WORDS), (PROVENANCE, ("einladung", "invitation")),
              (REQUEST, REQUEST_WORDS), (NEGATION, NEGATION_WORDS))


_VERB_FIRST = re.compile(r"^\W*(?:möchte|möchten|würde|würden|will|wird|nimmt|kommt|ist"
                         r"|would|wants|plans)\b", F)
_FIRST_PERSON = re.compile(r"\b(?:ich|wir|mich|uns|(?-i:I)|we)\b", F)


def subject_before(sentence: str, clause: str) -> bool:
    """A clause without a subject of its own whose subject, before it, is somebody else:
    "der Sprecher unseres Beirats, Herr Walter Brüggemann, möchte gern teilnehmen"."""
    at = sentence.find(clause)
    if at <= 0 or not _VERB_FIRST.match(clause):
        return False
    before = sentence[:at]
    return bool((TITLED.search(before) or NAMED_RELATIVE.search(before))
                and not _FIRST_PERSON.search(before))
