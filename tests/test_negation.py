"""The seven negation rules and their inverse, on hand-written stems and on the published release."""
import json
from pathlib import Path

import pytest

from data_pipeline.negation import RULES, Negation, negate_stem, parser_name, remove_negation, set_parser

ROOT = Path(__file__).resolve().parents[1]
PROMPT0, PROMPT1 = "Which of the following is not true? ", "Choose the incorrect answer. "


@pytest.fixture(autouse=True)
def fallback_parser():
    """Every expectation below is for the pip-only fallback, whether or not spaCy is installed."""
    set_parser("fallback")
    yield
    set_parser("auto")


def neg(stem, **kw):
    return negate_stem(stem, **kw)


# --- one test per rule ----------------------------------------------------------------------

def test_rules_tuple_is_the_interface():
    assert RULES == ("gold/not", "gold/un-in-", "not/because", "not/be", "not/modal", "not/do", "prompt")


@pytest.mark.parametrize("stem", ["Plants never grow in", "A cat can't see in", "Nothing lives in",
                                  "There is no water in", "Nobody can see", "Fish do not sleep in"])
def test_gold_not_keeps_the_stem(stem):
    assert neg(stem) == Negation("gold/not", stem)


@pytest.mark.parametrize("stem", ["Penguins are unable to", "Snow is rare in", "It is impossible for a fish to",
                                  "Deserts rarely get", "An unusual use for a flashlight may be"])
def test_gold_un_in_keeps_the_stem(stem):
    assert neg(stem) == Negation("gold/un-in-", stem)


def test_gold_words_count_only_in_the_last_clause():
    # "never" sits in an earlier clause, so the last clause is negated by not/be
    assert neg("Although owls never sleep at night, they are") == \
        Negation("not/be", "Although owls never sleep at night, they are not")


def test_not_because():
    assert neg("Leaves fall in autumn because") == Negation("not/because", "Leaves fall in autumn not because")
    # "because" outranks a single "is" in the same clause
    assert neg("The sky is blue because of").question == "The sky is blue not because of"


def test_because_with_attached_punctuation_is_not_the_word():
    # the release negated "... on because:" with not/do, not not/because
    r = neg("a switch turns something with a power source on because:")
    assert r == Negation("not/do", "a switch does not turn something with a power source on because:")


@pytest.mark.parametrize("stem, full, short", [
    ("The sun is a", "The sun is not a", "The sun isn't a"),
    ("Camel humps are a good example of", "Camel humps are not a good example of",
     "Camel humps aren't a good example of"),
    ("The dinosaur was", "The dinosaur was not", "The dinosaur wasn't"),
    ("Mammoths were hunted by", "Mammoths were not hunted by", "Mammoths weren't hunted by"),
])
def test_not_be_full_and_contracted(stem, full, short):
    assert neg(stem) == Negation("not/be", full)
    assert neg(stem, contract=True) == Negation("not/be", short)


def test_not_be_needs_exactly_one_be_word():
    r = neg("A thing that is hot is")
    assert r.rule != "not/be"


@pytest.mark.parametrize("stem, full", [
    ("An island is home to", "An island is not home to"),          # not " isn'tland"
    ("This plant is a", "This plant is not a"),                    # "this" does not hold "is"
    ("Thistles and irises are", "Thistles and irises are not"),
])
def test_be_is_matched_as_a_word_not_a_substring(stem, full):
    assert neg(stem).question == full


def test_capitalised_is_keeps_its_capital():
    assert neg("Is the moon made of").question == "Is not the moon made of"
    assert neg("Is the moon made of", contract=True).question == "Isn't the moon made of"


@pytest.mark.parametrize("stem, full, short", [
    ("A bird can fly over", "A bird can not fly over", "A bird can't fly over"),
    ("A cow will gain energy from", "A cow will not gain energy from", "A cow won't gain energy from"),
    ("A bass may make its home", "A bass may not make its home", "A bass may not make its home"),
    ("Salamanders might be found under", "Salamanders might not be found under",
     "Salamanders might not be found under"),
    ("The cracks could be caused by", "The cracks could not be caused by", "The cracks couldn't be caused by"),
    ("A good mixture would be", "A good mixture would not be", "A good mixture wouldn't be"),
])
def test_not_modal(stem, full, short):
    assert neg(stem) == Negation("not/modal", full)
    assert neg(stem, contract=True).question == short


def test_cannot_is_not_a_negation_token_and_not_can():
    # the release kept "we cannot change ... because" and negated the "because"
    r = neg("Humans have the ability to change how much they weigh, but we cannot change how tall we are because that is")
    assert r.rule == "not/because"
    # "cannot" is not the modal "can" either, and no "do not" is inserted after it
    assert neg("Fish cannot breathe").rule == "prompt"


@pytest.mark.parametrize("stem, full, short", [
    ("Predators eat", "Predators do not eat", "Predators don't eat"),
    ("The skeletal system protects the", "The skeletal system does not protect the",
     "The skeletal system doesn't protect the"),
    ("Slate probably formed", "Slate probably did not form", "Slate probably didn't form"),
    ("After extensive logging activity, a forest had less", "After extensive logging activity, a forest did not have less",
     "After extensive logging activity, a forest didn't have less"),
    ("Kelp has to have provisions to", "Kelp does not have to have provisions to", "Kelp doesn't have to have provisions to"),
    ("If a day has passed, so has", "If a day has passed, so does not have", "If a day has passed, so doesn't have"),
    ("Japan made Pearl Harbor", "Japan did not make Pearl Harbor", "Japan didn't make Pearl Harbor"),
])
def test_not_do(stem, full, short):
    assert neg(stem) == Negation("not/do", full)
    assert neg(stem, contract=True) == Negation("not/do", short)


@pytest.mark.parametrize("stem, full", [
    # a plural noun that is also a verb form comes before the real verb
    ("Sea horses require", "Sea horses do not require"),
    ("Bird dogs use their nose to find", "Bird dogs do not use their nose to find"),
    ("Thick feathers come in handy for birds", "Thick feathers do not come in handy for birds"),
    # a past participle that modifies the subject is not the root
    ("Skittles left in snow become", "Skittles left in snow do not become"),
    # the verb of a subordinate clause is not the root
    ("Where various seasons currently take place depends upon", "Where various seasons currently take place does not depend upon"),
    # a gerund subject
    ("Birds carrying away fruit has what kind of impact on the plant",
     "Birds carrying away fruit does not have what kind of impact on the plant"),
    # the verb after an adverb
    ("The floating arrow on a compass always points away from the",
     "The floating arrow on a compass always does not point away from the"),
    ("which of these need to be present for a tectonic plate movement",
     "which of these do not need to be present for a tectonic plate movement"),
])
def test_not_do_finds_the_root_among_two_verbs(stem, full):
    assert neg(stem) == Negation("not/do", full)


@pytest.mark.parametrize("stem", [
    "Wildfires are made worse by dry fuels, commonly brought on by",   # participle without a subject
    "What is it termed when a squirrel is inanimate",                  # participle after "is"
    "in order to better live in its habitat, camels have done one of these",  # perfect: no present/past root
    "Pit bulls thin their thicker coats by",                           # "thin" as an adjective
    "Cutting down trees in a forest",                                  # no finite verb
])
def test_no_finite_root_falls_through_to_prompt(stem):
    assert neg(stem).rule == "prompt"


def test_prompt_variants():
    assert neg("Microscopes") == Negation("prompt", PROMPT0 + "Microscopes")
    assert neg("Microscopes", prompt_variant=1) == Negation("prompt", PROMPT1 + "Microscopes")
    # a stem whose last clause is empty (ends in ".") but not in "?" still gets a prompt
    assert neg("How long did it take the Grand Canyon to form? A").rule == "prompt"


def test_no_rule_for_which_questions_and_stems_ending_in_a_question_mark():
    assert neg("What is an example of hunting?") == Negation(None, None)     # empty last clause
    assert neg("Which substance is capable of dripping?") == Negation(None, None)
    assert neg("Which of these things") == Negation(None, None)             # "which" stem, no rule fits


def test_prompt_rule_reads_the_last_clause_as_the_papers_notebook():
    # an empty last clause (stem ending in "." or ",") gets no rule at all
    assert neg("The bear in the wild needs to find other animals to feast.") == Negation(None, None)
    assert neg("When warm winds blow across an area from off of the sea,") == Negation(None, None)
    # "Which" starting the last clause (not the stem) blocks the prompt rule, and vice versa
    assert neg("Dogs and cats, which of these") == Negation(None, None)
    assert neg("Which animal is fast, cheetahs or the") == Negation("prompt", PROMPT0 + "Which animal is fast, "
                                                                    "cheetahs or the")


def test_fallback_reads_noun_compounds_and_plural_nouns_as_nouns():
    assert neg("Polar bears live in").question == "Polar bears do not live in"
    assert neg("Angler fish hunt by using").question == "Angler fish do not hunt by using"
    assert neg("Wide tree rings mean").question == "Wide tree rings do not mean"
    assert neg("The pressure in air drops very low, so clouds").rule == "prompt"
    assert neg("Jim found birds living among").question == "Jim did not find birds living among"
    # a verb after a noun subject is still a verb
    assert neg("Sunlight transfers heat energy to").question == "Sunlight does not transfer heat energy to"
    assert neg("a compass uses iron to").question == "a compass does not use iron to"


def test_rule_applies_to_the_last_clause_only():
    stem = ("A person puts a potato in some embers on the edge of a campfire. The embers are")
    assert neg(stem).question == stem + " not"
    # two "is" in the whole stem, one in its last clause
    assert neg("Ice is cold, and steam is").question == "Ice is cold, and steam is not"


def test_parser_name_reports_the_fallback():
    assert parser_name() == "lemminflect-heuristic"
    with pytest.raises(ValueError):
        set_parser("stanza")


def test_asking_for_spacy_without_spacy_fails_clearly(monkeypatch):
    from data_pipeline import negation
    monkeypatch.setenv("NEQA_SPACY_MODEL", "no_such_spacy_model")   # whether or not spaCy itself is installed
    monkeypatch.setattr(negation, "_NLP", None)
    with pytest.raises(RuntimeError, match="en_core_web_sm"):
        set_parser("spacy")
    assert parser_name() == "lemminflect-heuristic"


# --- remove_negation (task 1) ---------------------------------------------------------------

@pytest.mark.parametrize("question, plain", [
    ("X is not a", "X is a"),
    ("Horses do not run", "Horses run"),
    ("Fiddling does not require", "Fiddling requires"),
    ("He didn't go", "He went"),
    ("John Selden did not die in ___ ?", "John Selden died in ___ ?"),
    ("Birds can't fly in", "Birds can fly in"),
    ("Birds cannot ___?", "Birds can ___?"),
    ("A bird can not fly over", "A bird can fly over"),
    ("A cow won't gain", "A cow will gain"),
    ("Worms are excellent decomposers not because", "Worms are excellent decomposers because"),
    ("Isn't the moon made of", "Is the moon made of"),
    ("Rajesh Khanna not used to communicate in ___ ?", "Rajesh Khanna used to communicate in ___ ?"),
    ("Choose the incorrect answer. Microscopes", "Microscopes"),
    ("Which of the following is not true? The moon is", "The moon is"),
    # an earlier negation of the original stem stays; the last one goes
    ("he didn't see it until late. This could have happened not because of",
     "he didn't see it until late. This could have happened because of"),
    ("Carbon dioxide exists where it does not because", "Carbon dioxide exists where it does because"),
])
def test_remove_negation_cases(question, plain):
    assert remove_negation(question) == plain


def test_remove_negation_none_without_a_negation():
    assert remove_negation("The sun is a") is None
    assert remove_negation("Nothing is known about") is None      # not a negation it can undo


@pytest.mark.parametrize("stem", ["The sun is a", "A bird can fly over", "Predators eat", "Slate probably formed",
                                  "Leaves fall in autumn because", "Microscopes", "Kelp has to have provisions to"])
@pytest.mark.parametrize("contract", [False, True])
def test_remove_negation_inverts_negate_stem(stem, contract):
    assert remove_negation(neg(stem, contract=contract).question) == stem


def test_remove_negation_agrees_with_the_published_task1_file():
    negated = [json.loads(l) for l in open(ROOT / "data_pipeline/neqa_100.jsonl")]
    plain = [json.loads(l) for l in open(ROOT / "data_pipeline/neqa_100_nonnegated.jsonl")]
    assert len(negated) == len(plain) == 100
    agree = sum((remove_negation(a["question"]) or a["question"]) == b["question"] for a, b in zip(negated, plain))
    # measured 99/100; the one miss is the release's "Lizards do have a ___?" (we write "Lizards have")
    assert agree >= 97
