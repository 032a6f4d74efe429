"""The seven negation rules of the NeQA construction, as pure functions.

A stem is negated in its last clause (the text after the last ",", "." or "?");
the first rule that fits wins:

    gold/not      the clause already holds a negation word        -> kept, unused
    gold/un-in-   it holds a negative-prefix or rarity word        -> kept, answer unchanged
    not/because   "because"                                        -> "not because"
    not/be        exactly one of is/are/was/were                   -> "is not" / "isn't"
    not/modal     exactly one of may/might/can/could/will/would    -> "can not" / "can't"
    not/do        the clause's root verb is finite (VBZ/VBP/VBD)   -> "does not X" / "doesn't X"
    prompt        the clause does not start with "Which"           -> "Which of the following is not true? ..."

A stem whose last clause is empty (it ends in ",", "." or "?") gets no rule, as in the paper's
notebook (data_pipeline/scripts/add_negation.ipynb of the NeQA repository), which also reads the
"Which" of the prompt rule from the last clause, not from the start of the stem.

Words are matched as whitespace-separated tokens, as the release did: "cannot" is not
the token "not" (a release item keeps "we cannot change ... not because"), "because:"
is not "because" (a release item with "... on because:" was negated by not/do), and
"island" or "this" never match "is". The release hand-made its "manual/un-in-" items from
stems with an empty last clause.

The root verb of not/do comes from spaCy's dependency parse when spaCy and its English
model are importable, otherwise from a small heuristic over lemminflect's word lists
(`_fallback_root`); `parser_name()` says which is active.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

RULES = ("gold/not", "gold/un-in-", "not/because", "not/be", "not/modal", "not/do", "prompt")
PROMPT_PREFIXES = ("Which of the following is not true? ", "Choose the incorrect answer. ")

NEGATION_WORDS = {"not", "nothing", "none", "never", "nobody", "nowhere", "no"}
UN_IN_WORDS = {"unable", "unlike", "unlikely", "incapable", "unusual", "impossible",
               "rarely", "rare", "barely", "scarcely"}
BE_WORDS = {"is": "isn't", "are": "aren't", "was": "wasn't", "were": "weren't"}
# "may"/"might" have no contraction in the release ("may not" in both forms); "can" is "can not" in full.
MODAL_WORDS = {"may": "may not", "might": "might not", "can": "can't", "could": "couldn't",
               "will": "won't", "would": "wouldn't"}
_PUNCT = "\"'“”‘’()[]{}:;!"


@dataclass(frozen=True)
class Negation:
    rule: str | None        # one of RULES, or None when no rule fits
    question: str | None    # the negated stem; the stem unchanged for gold/*; None when no rule fits


# ---------------------------------------------------------------------------------------------
# tokens

def _split_clause(stem: str) -> tuple[str, str]:
    """(everything up to and including the last , . or ?, the last clause)."""
    cut = max(stem.rfind(","), stem.rfind("."), stem.rfind("?")) + 1
    return stem[:cut], stem[cut:]


def _tokens(text: str) -> list[re.Match]:
    return list(re.finditer(r"\S+", text))


def _word(token: str) -> str:
    return token.strip(_PUNCT).lower()


def _cap(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _replace(text: str, m: re.Match, new: str) -> str:
    return text[:m.start()] + new + text[m.end():]


def _is_negation(token: str) -> bool:
    w = token.lower().replace("’", "'")
    return w.strip(_PUNCT) in NEGATION_WORDS or "n't" in w


# ---------------------------------------------------------------------------------------------
# root verb: spaCy when importable, otherwise a lemminflect heuristic

_PARSER_CHOICE = "auto"
_NLP = None          # the loaded spaCy pipeline, or False when it cannot be loaded


def set_parser(name: str) -> str:
    """Choose the root-verb finder: "auto" (spaCy if importable, else fallback), "spacy" or "fallback".
    Returns the name of the one that will run; raises RuntimeError when "spacy" cannot be loaded."""
    global _PARSER_CHOICE
    if name not in ("auto", "spacy", "fallback"):
        raise ValueError(f"unknown parser {name!r}; choose auto, spacy or fallback")
    _PARSER_CHOICE = name
    if name == "spacy" and _load_spacy() is None:
        _PARSER_CHOICE = "auto"
        raise RuntimeError("spaCy or its model en_core_web_sm is not installed "
                           "(pip install spacy && python -m spacy download en_core_web_sm)")
    return parser_name()


def _load_spacy():
    global _NLP
    if _NLP is None:
        try:
            import spacy
            _NLP = spacy.load(os.environ.get("NEQA_SPACY_MODEL", "en_core_web_sm"))
        except Exception:       # not installed, or the model is missing
            _NLP = False
    return _NLP or None


def parser_name() -> str:
    """Which root-verb finder is active: "spacy" or "lemminflect-heuristic"."""
    if _PARSER_CHOICE != "fallback" and _load_spacy() is not None:
        return "spacy"
    return "lemminflect-heuristic"


_DETERMINERS = {"the", "a", "an", "this", "these", "those", "its", "their", "his", "her", "my", "your",
                "our", "some", "any", "each", "every", "all", "both", "either", "neither", "no", "much",
                "many", "more", "most", "few", "several", "such", "whose", "another", "other", "one",
                "less", "fewer", "own", "very", "too", "same"}
_SINGULAR_DETERMINERS = {"a", "an", "the", "this", "that", "each", "every", "one", "another"}
_PREPOSITIONS = {"of", "in", "on", "at", "by", "for", "with", "from", "into", "onto", "over", "under",
                 "about", "through", "during", "between", "among", "against", "without", "within",
                 "upon", "across", "along", "around", "behind", "beyond", "near", "than", "like", "via",
                 "toward", "towards", "per"}
_ARTICLES = {"a", "an", "the", "its", "their", "his", "her", "my", "your", "our", "this", "these", "those"}
_PARTICLES = {"down", "up", "out", "off", "away"}
_PRONOUNS = {"i", "you", "we", "they", "he", "she", "it", "who", "which", "what", "people", "someone",
             "something", "everyone", "anyone", "children", "men", "women", "these", "those"}
_BE = {"be", "been", "being", "am", "is", "are", "was", "were", "'s", "'re"}
_NOT_FINITE = _BE | {"do", "does", "did", "cannot", "can", "could", "may", "might", "will", "would", "shall",
                     "should", "must", "ought"}
_PERFECT = {"has", "have", "had"}
_CAUSATIVES = {"help", "make", "let", "have", "watch", "see", "hear"}
_SUBJECT_PRONOUNS = {"i", "you", "we", "they", "he", "she"}
_SUBORDINATORS = {"when", "if", "where", "while", "as", "since", "although", "though", "unless", "once",
                  "until", "whether", "whenever", "wherever", "after", "before"}
_CONJUNCTIONS = {"and", "or", "but", "so", "yet", "nor"}
_RELATIVES = {"who", "which", "that", "where", "when", "whom", "whose"}
_VERB_TAGS = ("VBZ", "VBD", "VBP")
_ADVERBS_S = {"always", "sometimes", "perhaps", "towards", "afterwards", "nowadays", "thus", "less", "unless"}
_ADVERBS = {"often", "always", "also", "usually", "never", "sometimes", "now", "still", "then", "just",
            "only", "even", "already", "mostly", "soon", "first", "again", "thus", "therefore"}


@lru_cache(maxsize=None)
def _forms(word: str) -> tuple[str, set[str]] | None:
    """(lemma, the tags among VBZ/VBD/VBP/VBN that `word` can be) for a word lemminflect knows as a verb."""
    import lemminflect
    if not word.isalpha():
        return None
    lemmas = lemminflect.getAllLemmas(word, upos="VERB").get("VERB", ())
    for lemma in sorted(lemmas, key=lambda lemma: lemma != word):      # "lay": lay before lie
        tags = {t for t in _VERB_TAGS + ("VBN",) if word in lemminflect.getInflection(lemma, tag=t)}
        if tags:
            return lemma, tags
    return None


@lru_cache(maxsize=None)
def _past_of_other(word: str) -> str | None:
    """The lemma of which `word` is the past tense, when that lemma is another word ("found" -> "find")."""
    import lemminflect
    if not word.isalpha():
        return None
    for lemma in sorted(lemminflect.getAllLemmas(word, upos="VERB").get("VERB", ())):
        if lemma != word and word in lemminflect.getInflection(lemma, tag="VBD"):
            return lemma
    return None


def _verb_forms(word: str) -> tuple[str, set[str]] | None:
    """Like `_forms`, but only for words that can be finite (VBZ/VBD/VBP) and are not auxiliaries."""
    if word in _NOT_FINITE:
        return None
    f = _forms(word)
    return f if f is not None and f[1] & set(_VERB_TAGS) else None


@lru_cache(maxsize=None)
def _nounish(word: str) -> bool:
    """lemminflect knows the word as a noun or adjective too."""
    import lemminflect
    return bool(set(lemminflect.getAllLemmas(word)) & {"NOUN", "ADJ", "PROPN"})


def _looks_plural(word: str) -> bool:
    return word in _PRONOUNS - {"he", "she", "it", "someone", "something", "everyone", "anyone", "who",
                                "which", "what"} \
        or (word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")) and len(word) > 3
            and not _is_adverb(word) and word not in _ADVERBS_S)


def _after_determiner(words: list[str], i: int, proper: set[int]) -> bool:
    """words[i] ends a noun phrase "DET ADJ... word" ("their thicker coats", "the right light")."""
    k = i - 1
    while k >= 0 and k not in proper and "ADJ" in _pos(words[k]) and "NOUN" not in _pos(words[k]) \
            and words[k] not in _DETERMINERS:
        k -= 1
    return k < i - 1 and k >= 0 and words[k] in _ARTICLES


def _is_adverb(word: str) -> bool:
    return word in _ADVERBS or (word.endswith("ly") and word not in {"fly", "only", "apply", "supply", "rely",
                                                                     "reply", "family", "belly", "jelly"})


def _fallback_root(words: list[str]) -> tuple[int, str, str] | None:
    """(index, tag, lemma) of the clause's finite main verb, or None. `words`: the clause's tokens
    without surrounding punctuation (a capitalised word after the first is taken as a name).

    A rough tagger for a short clause: a word is a finite verb when lemminflect knows it in a
    VBZ/VBD/VBP form and the context allows a verb (a subject-like word before it; not after a
    determiner, preposition, "to", a particle, an auxiliary or a possessive). Words that can also
    be nouns are taken as nouns when they sit in a prepositional phrase ("for corn rises"), before
    "of" or a relative word, or right before a verb ("Sea horses require", "Bird dogs use their").
    The verb of a clause opened by a subordinator ("Where seasons take place depends upon") and
    the first verb after a relative word are skipped; a past form that is also a participle yields
    to a later verb ("Skittles left in snow become") and is a participle after a form of "be".
    """
    proper = {i for i, w in enumerate(words) if i and w[:1].isupper()}
    words = [w.lower() for w in words]
    n = len(words)
    forms = [None if i in proper else _verb_forms(w) for i, w in enumerate(words)]

    def next_content(i: int) -> int:
        j = i + 1
        while j < n and _is_adverb(words[j]):
            j += 1
        return j

    def verbish_at(j: int) -> bool:
        return j < n and (forms[j] is not None or words[j] in _NOT_FINITE)

    compound: set[int] = set()   # words taken as nouns by noun_before_verb

    def noun_before_verb(i: int) -> bool:
        """words[i] is the head noun of the clause's opening noun phrase, and the next word its verb:
        "Polar bears live", "Angler fish hunt", "Heavy rain causes", "tree rings mean". Only after
        adjectives or nouns that cannot be verbs, and only when the next word agrees with words[i] as a noun."""
        if i + 1 >= n or forms[i + 1] is None or words[i + 1] in _PREPOSITIONS | _PARTICLES:
            return False
        if not all(k in compound or (k not in proper and (forms[k] is None or k == 0) and words[k] not in
                   _PREPOSITIONS | _RELATIVES | _NOT_FINITE | _SUBORDINATORS | _CONJUNCTIONS) for k in range(i)):
            return False
        tags = forms[i + 1][1]
        before = [k for k in range(i) if not _is_adverb(words[k])]
        p = words[before[-1]] if before else None
        if _looks_plural(words[i]):          # a plural noun after an adjective or a noun modifier: "polar bears"
            if any(words[k] in _SINGULAR_DETERMINERS - {"the"} for k in range(i)):
                return False                 # "a compass uses": a singular noun phrase, so words[i] is its verb
            return "VBP" in tags and (p is None or "ADJ" in _pos(p) or (before[-1] in compound and not _looks_plural(p)))
        # a base form after a singular noun cannot be its verb ("angler fish", "heavy rain"): a noun
        return "VBZ" not in forms[i][1] and p is not None and not _looks_plural(p) and p not in _PRONOUNS \
            and bool({"VBP", "VBZ"} & tags)

    candidates = []          # (index, tag, lemma, participle_like, nounish)
    skipped = None
    skip = 1 if n and (words[0] in _SUBORDINATORS or words[0] == "to") else 0
    in_pp = seen_be = gerund = False
    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        if w in _BE:
            seen_be = True
        if w in _PREPOSITIONS:
            in_pp = True
            continue
        if w.endswith("ing") and "VERB" in _pos(w):
            gerund = True                                   # "A leaf falling from a tree means"
        if i and forms[i] is not None and _nounish(w) and noun_before_verb(i):
            compound.add(i)
            continue                                        # "Polar bears live", "Angler fish hunt"
        if i and w in _RELATIVES and prev not in _PREPOSITIONS:
            skip = max(skip, 1)
            continue
        if forms[i] is None or i == 0:
            continue
        if skip and prev in _RELATIVES and words[0] not in _SUBORDINATORS and words[0] != "to":
            skip -= 1                                       # "light that splits into ...": the relative's verb,
            continue                                        # even when it could be a noun
        lemma, tags = forms[i]
        tag = "VBZ" if "VBZ" in tags else "VBD" if "VBD" in tags else "VBP"
        nounish = _nounish(w)
        j = next_content(i)
        nxt = words[j] if j < n else ""
        floating = prev in ("both", "all") and i >= 2 and _looks_plural(words[i - 2])   # "feathers both help"
        if (prev in _DETERMINERS and not floating or prev == "to" or _after_determiner(words, i, proper)) \
                and not (prev in ("these", "those") and tag == "VBP") \
                or prev in _PREPOSITIONS or prev in _PARTICLES or prev in _NOT_FINITE \
                or prev.endswith(("'s", "s'", "'d", "'ll")) or (i >= 2 and words[i - 2] == "to" and forms[i - 1]):
            continue                                        # "you'd walk": after a contracted modal
        if nounish and j >= n and prev not in proper and "ADJ" in _pos(prev) and not prev.endswith("ing") \
                and (forms[i - 1] is None or "NOUN" not in _pos(prev)) \
                and not _is_adverb(prev) and prev not in _DETERMINERS:
            continue                                        # "the high winds" ending the clause: a noun
        if w in _PERFECT and j < n and "VBN" in (_forms(nxt) or ("", ()))[1]:
            continue                                        # "camels have done": an auxiliary
        if nounish:
            if in_pp and not _is_adverb(prev) and prev not in _PRONOUNS and nxt not in _ARTICLES and not gerund \
                    and not (nxt == "to" and j + 1 < n and forms[j + 1] is not None):
                continue                                    # "the demand for corn rises"
            if prev in ("and", "or"):
                continue                                    # "debris and damage"
            if nxt == "of" or nxt in _RELATIVES:
                continue                                    # "parts of", "objects that are"
            if verbish_at(j) and not (j > i + 1 and "ADJ" in _pos(nxt)) and (not _nounish(nxt) or j > i + 1 or
                                  (j + 1 < n and (words[j + 1] in _DETERMINERS or words[j + 1] in _PRONOUNS))):
                continue                                    # "horses require", "dogs use their"
        subject = [k for k in range(i) if not _is_adverb(words[k]) and words[k] not in _CONJUNCTIONS]
        if nounish and prev in _CONJUNCTIONS and not subject and tag != "VBD":
            continue                                        # "so clouds": a noun, no subject before it
        if "VBN" in tags and prev.endswith("ing") and "VERB" in _pos(prev):
            continue                                        # "avoid getting hurt by": a participle
        if tag == "VBP" and subject and not (_looks_plural(words[subject[-1]]) or words[subject[-1]] in _PRONOUNS):
            past = _past_of_other(w)
            if past is not None:
                tag, lemma, tags = "VBD", past, tags | {"VBD"}   # "Jim found": find, not found
        if tag == "VBZ":
            if nounish and _looks_plural(prev) and prev not in _PRONOUNS:
                continue                                    # "lightbulbs effects"
        elif tag == "VBD":
            if "VBN" in tags and (seen_be or not subject):
                continue                                    # "What is it termed", "commonly brought on"
        else:
            if subject:
                k = subject[-1]
                subj = words[k]
                if not (_looks_plural(subj) or subj in _PRONOUNS) and (nounish or not in_pp):
                    if k > 0 and (words[k - 1] in _SINGULAR_DETERMINERS or words[k - 1].endswith("'s")) \
                            or subj.endswith("ing") and "VERB" in _pos(subj):   # "Adding milk to"
                        continue                            # "a life form absorb", "the year progress"
                if k >= 1 and _forms(words[k - 1]) and _forms(words[k - 1])[0] in _CAUSATIVES:
                    continue                                # "help your body repair"
                if "ADJ" in _pos(w) and "NOUN" not in _pos(w) and subj not in _PRONOUNS and nxt in _ARTICLES:
                    continue                                # "Pit bulls thin their coats"
        entry = (i, tag, lemma, tag == "VBD" and "VBN" in tags, nounish)
        if skip:
            skip -= 1
            if skipped is None:
                skipped = entry
            continue
        in_pp = False
        candidates.append(entry)
    if skipped is not None and words[0] in _SUBORDINATORS:
        # "If it starts raining acid rain you should": the main clause begins at its subject pronoun
        later = [k for k in range(skipped[0] + 1, n) if words[k] in _SUBJECT_PRONOUNS]
        if later:
            candidates = [c for c in candidates if c[0] > later[-1]]
            if not candidates:
                return None
    if words and words[0] in ("a", "an", "this", "each", "every", "one", "another") and len(candidates) > 1 \
            and candidates[0][1] == "VBP" and any(c[1] == "VBZ" for c in candidates[1:]):
        # "A substance people use for writing also helps": a singular subject takes the VBZ verb
        candidates = [c for c in candidates if c[1] == "VBZ"]
    for c, (i, tag, lemma, participle_like, _) in enumerate(candidates):
        if participle_like and any(not later[4] for later in candidates[c + 1:]):
            continue                                        # "Skittles left in snow become"
        return i, tag, lemma
    if skipped is not None and words[0] in _SUBORDINATORS:
        return skipped[:3]                                  # "If a person wants to ..."
    return None


@lru_cache(maxsize=None)
def _pos(word: str) -> set[str]:
    import lemminflect
    return set(lemminflect.getAllLemmas(word))


def _spacy_root(clause: str) -> tuple[int, int, str, str] | None:
    """(start, end, tag, lemma) of the clause's dependency root when it is a finite verb."""
    nlp = _load_spacy()
    doc = nlp(clause)
    for tok in doc:
        if tok.dep_ == "ROOT":
            if tok.tag_ in _VERB_TAGS and tok.lower_ not in _NOT_FINITE:
                return tok.idx, tok.idx + len(tok.text), tok.tag_, tok.lemma_
            return None
    return None


def find_root(clause: str) -> tuple[int, int, str, str] | None:
    """Character span, tag and lemma of the clause's finite root verb, or None."""
    if parser_name() == "spacy":
        return _spacy_root(clause)
    toks = _tokens(clause)
    found = _fallback_root([t.group().strip(_PUNCT) for t in toks])
    if found is None:
        return None
    i, tag, lemma = found
    m = toks[i]
    word = _word(m.group())
    start = m.start() + m.group().lower().index(word)
    return start, start + len(word), tag, lemma


# ---------------------------------------------------------------------------------------------
# the rules

def negate_stem(stem: str, contract: bool = False, prompt_variant: int = 0) -> Negation:
    """Negate an OpenBookQA stem with the first rule that fits its last clause."""
    head, clause = _split_clause(stem)
    toks = _tokens(clause)
    raw = [t.group() for t in toks]
    words = [_word(t) for t in raw]
    if not toks:            # an empty last clause ("...?", "... dogs.") is skipped, as the paper's notebook does
        return Negation(None, None)

    if any(_is_negation(t) for t in raw):
        return Negation("gold/not", stem)
    if any(w in UN_IN_WORDS for w in words):
        return Negation("gold/un-in-", stem)

    exact = [t.lower() for t in raw]        # "because:" and "is," are not the rule words
    if "because" in exact:
        m = toks[exact.index("because")]
        return Negation("not/because", head + _replace(clause, m, _cap("not because", m.group())))

    for rule, words in (("not/be", BE_WORDS), ("not/modal", MODAL_WORDS)):   # exactly one such word
        hits = [i for i, w in enumerate(exact) if w in words]
        if len(hits) == 1:
            m, w = toks[hits[0]], exact[hits[0]]
            new = words[w] if contract else f"{w} not"
            return Negation(rule, head + _replace(clause, m, _cap(new, m.group())))

    root = find_root(clause)
    if root is not None:
        start, end, tag, lemma = root
        aux = {"VBZ": "does", "VBP": "do", "VBD": "did"}[tag]
        neg = f"{aux}n't" if contract else f"{aux} not"
        original = clause[start:end]
        if original[:1].isupper() and original.lower() != "i":
            neg = _cap(neg, original)
        new_clause = clause[:start] + f"{neg} {lemma}" + clause[end:]
        return Negation("not/do", head + new_clause)

    if raw[0].lower() != "which" and not stem.rstrip().endswith("?"):   # the last clause's first word
        return Negation("prompt", PROMPT_PREFIXES[prompt_variant % 2] + stem)
    return Negation(None, None)


# ---------------------------------------------------------------------------------------------
# the inverse (task 1)

_UNDO_CONTRACTED = {"isn't": "is", "aren't": "are", "wasn't": "was", "weren't": "were", "can't": "can",
                    "cannot": "can", "couldn't": "could", "won't": "will", "wouldn't": "would",
                    "shouldn't": "should", "mustn't": "must", "hasn't": "has", "haven't": "have",
                    "hadn't": "had", "mightn't": "might", "needn't": "need", "ain't": "is"}
_NEGATION_RE = re.compile(
    r"\b(?P<aux>does|do|did)(?: not|n't) (?P<verb>(?!because\b)[A-Za-z]+)"      # does not play -> plays
    r"|\bnot because\b"                                             # not because -> because
    r"|\b(?P<contr>[A-Za-z]+n't|cannot)\b"                          # isn't -> is, cannot -> can
    r"|\b(?P<word>not)\b",                                          # is not, can not, X not used -> drop "not"
    re.IGNORECASE)


def remove_negation(question: str) -> str | None:
    """The question without its negation (task 1); None when no negation is found.

    The last negation in the text is removed (an OpenBookQA stem's own earlier negations,
    e.g. "he didn't see it ... not because of", stay); a prompt prefix is removed instead when
    present. "never", "no", "nothing" are left alone, as in the release's task-1 file.
    """
    for p in PROMPT_PREFIXES:
        if question.startswith(p):
            return question[len(p):]
    matches = list(_NEGATION_RE.finditer(question.replace("’", "'")))
    if not matches:
        return None
    m = matches[-1]
    text = m.group()
    if m.group("aux"):
        aux, verb = m.group("aux").lower(), m.group("verb")
        if verb.lower() in ("be",):
            new = verb
        else:
            new = _inflect(verb, {"does": "VBZ", "do": "VBP", "did": "VBD"}[aux])
        new = _cap(new, text)
    elif text.lower() == "not because":
        new = _cap("because", text)
    elif m.group("contr"):
        w = text.lower()
        base = _UNDO_CONTRACTED.get(w)
        if base is None:
            return None
        new = _cap(base, text)
    else:   # a bare "not": drop it and one neighbouring space
        s, e = m.start(), m.end()
        if e < len(question) and question[e] == " ":
            e += 1
        elif s > 0 and question[s - 1] == " ":
            s -= 1
        return question[:s] + question[e:]
    return question[:m.start()] + new + question[m.end():]


def _inflect(lemma: str, tag: str) -> str:
    import lemminflect
    forms = lemminflect.getInflection(lemma.lower(), tag=tag)
    return forms[0] if forms else lemma
