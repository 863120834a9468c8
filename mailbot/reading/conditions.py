"""Whether a registration depends on something (pure): "ich komme, falls …", "only if …",
"Allerdings steht noch nicht fest, ob …" — and when a condition is about something else
("falls ich doch nicht kann, sage ich ab", "wenn das nicht klappt, komme ich trotzdem")."""

from __future__ import annotations

import re

from mailbot.reading.sentences import F, has_any

IF_WORDS = ("wenn", "falls", "sofern", "vorausgesetzt", "bedingung", "voraussetzung", "nur dann",
            "if ", " if", "provided", "as long as", "unless", "condition", "sollte", "in case")
# always a condition of what the sentence says: "nur, wenn", "only if", "vorausgesetzt"
_STRONG = re.compile(r"\bnur\b.{0,40}\b(?:wenn|falls|sofern)\b|\bnur dann\b|\bonly if\b"
                     r"|\bvorausgesetzt\b|\bunter der (?:bedingung|voraussetzung)\b"
                     r"|\bprovided(?: that)?\b|\bas long as\b|\bon condition\b|\bsofern\b", F)
_WEAK = re.compile(r"\b(?:wenn|falls|sollte|if|unless|in case)\b", F)
# a wish or a courtesy, no condition: "ich würde mich freuen, wenn …", "wenn möglich"
_NO_CONDITION = re.compile(
    r"\b(?:trotzdem|auf jeden fall|in jedem fall|so oder so|jedenfalls|anyway|regardless"
    r"|either way|in any case|no matter)\b"
    r"|\b(?:freu\w*|dankbar|schön|hilfreich|helfen|toll|nett|lieb|glad|happy|grateful"
    r"|appreciate\w*|great|nice|helpful)\W+(?:\w+\W+){0,4}?(?:wenn|if)\b"
    r"|\b(?:wenn|falls|if)\s+(?:möglich|gewünscht|nötig|erforderlich|ja|possible|needed"
    r"|necessary|you like|so)\b", F)
_AWAY = re.compile(r"\b(?:nicht|kein\w*|verhindert|absag\w*|abmeld\w*|bescheid|not|can't"
                   r"|cannot|unable)\b|n't\b", F)
_ATTEND = re.compile(r"\b(?:komme|kommen|teilnehmen|teil|dabei|anmelden|melde\w*|register\w*"
                     r"|attend|join|come|count (?:me|us) in|participate|sign (?:me|us) up)\b", F)
_UNSURE = re.compile(r"\b(?:steht (?:noch )?nicht fest|noch nicht (?:fest|sicher|klar)|noch offen"
                     r"|noch unklar|hängt (?:\w+ )?davon ab|je nachdem|abhängig davon|abhängig von"
                     r"|not (?:yet )?(?:sure|certain|decided|confirmed) (?:if|whether)"
                     r"|depends on|depending on)\b", F)
_UNSURE_WORDS = ("fest", "sicher", "klar", "offen", "hängt", "je nachdem", "abhängig", "sure",
                 "certain", "decided", "confirmed", "depend")
# a German condition with its verb first: "Passt der Termin, komme ich gerne",
# "Bekomme ich frei, bin ich dabei" — a clause before the comma, then the verb of coming
_VERB_FIRST = re.compile(
    r"^\W*(?:(?:passt|klappt|geht|ist|sind|gibt|findet|wird|werden)\s+(?:es|der|die|das|den|dem"
    r"|mein\w*|unser\w*|ihr\w*|sie|er|man)"  # "Passt der Termin", "Klappt es"
    r"|(?:bekomme|kriege|erhalte|habe|hab|finde|kann|darf|bin)\s+ich"  # "Bekomme ich frei"
    r"|(?:bekommen|kriegen|haben|finden|können|dürfen|sind)\s+wir)\b"
    r"[^,.?!]{0,80},\s*(?:dann\s+)?"
    r"(?:komme|kommen|bin|sind|nehme|nehmen|melde|melden|wäre|wären|würde|würden)\s+"
    r"(?:ich|wir)\b", F)


def conditional(sentence: str, low: str) -> bool:
    """Whether a sentence that says the writer comes makes it depend on something: a
    condition on the registration ("ich nehme nur teil, wenn …", "ich komme, falls die
    Sitzung verlegt wird"), not a courtesy about not coming ("falls ich doch nicht kann,
    sage ich ab") nor a wish ("ich freue mich, wenn …")."""
    if not _ATTEND.search(sentence):
        return False
    if _VERB_FIRST.search(sentence):  # "Klappt es mit der Vertretung, bin ich dabei"
        return True
    if not has_any(low, IF_WORDS):
        return False
    if _STRONG.search(sentence):  # "nur, wenn es Plätze für Rollstuhlfahrer gibt"
        return True
    m = _WEAK.search(sentence)
    if m is None or _NO_CONDITION.search(sentence):
        return False
    clause = sentence[m.end():m.end() + 60]  # what it depends on
    if AVAILABILITY.search(clause):  # "wenn noch ein Platz frei ist": the waitlist's
        return False
    return not _AWAY.search(clause)


def unsure(low: str, sentence: str) -> bool:
    """"Allerdings steht noch nicht fest, ob …": whether the writer can come is open."""
    return has_any(low, _UNSURE_WORDS) and bool(_UNSURE.search(sentence))


def firm_then(sentence: str, previous: str) -> bool:
    """"Dann melde ich mich hiermit verbindlich an" after an answer ("das ist eine gute
    Nachricht!") or after asking only for a free place: no reserve. After a question of
    her own or a condition it stays one ("Können Sie das zusagen? Dann …")."""
    if previous.endswith("?") and not AVAILABILITY.search(previous):
        return False
    return bool(_FIRM.search(sentence)) and not conditional(previous, previous.lower())


_FIRM = re.compile(r"\b(?:hiermit|verbindlich|hereby|herewith)\b"
                   r"|^\W*(?:dann|then)\W+(?:ja|yes|gerne?)\b", F)
AVAILABILITY = re.compile(r"\b(?:pl(?:a|ä)tze?|platz|noch möglich|still (?:possible|available)"
                          r"|places?|spots?|seats?|space)\b", F)

# each long pattern with the words tested before it (for speed); their test reads this
WORD_HINTS = ((_UNSURE, _UNSURE_WORDS), (_STRONG, IF_WORDS), (_WEAK, IF_WORDS))


def anyway(sentence: str) -> bool:
    """"Wenn das nicht klappt, komme ich trotzdem": she comes whatever happens."""
    return bool(_ANYWAY.search(sentence) and _ATTEND.search(sentence))


_ANYWAY = re.compile(r"\b(?:trotzdem|auf jeden fall|in jedem fall|so oder so|anyway|regardless"
                     r"|either way|in any case|no matter what)\b", F)
