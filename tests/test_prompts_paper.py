"""Our prompts against the paper's, byte for byte.

The expected strings below are transcribed by hand from the paper's code (yuhui-zh15/NeQA,
eval_pipeline/data.py: NeQA.prompt_* and Task2.prompt_*), filled in for the first item of
neqa_100.jsonl and the first two task-2 pairs (the paper swaps the options on every other pair).
They are written out in full, not built from data_pipeline.prompts.
"""
import json
from pathlib import Path

import pytest

from data_pipeline.prompts import neqa_prompt, task2_prompt

ROOT = Path(__file__).resolve().parents[1]
ITEM = json.loads((ROOT / "data_pipeline" / "neqa_100.jsonl").read_text().splitlines()[0])
TASK2 = [json.loads(line) for line in (ROOT / "data_pipeline" / "neqa_100_task2.jsonl").read_text().splitlines()[:2]]

HEAD = "The following are multiple choice questions (with answers) about common sense."
Q = ("Question: Eden Roc Renaissance Hotel Miami Beach is not a ___ ?\n"
     "A. hotel\nB. download\nAnswer:")
SHOTS = ("Question: If a cat has a body temp that is below average, it isn't in\nA. danger\nB. safe ranges\nAnswer: B\n\n"
         "Question: As the barometer reading goes lower there is not a greater chance of\nA. sunshine\nB. getting wet\nAnswer: A\n\n"
         "Question: Coral is a type of living organism which cannot be identified in\n"
         "A. saltwater locations that are open\nB. any where with liquid\nAnswer: B\n\n")
COT = ("Question: If a cat has a body temp that is below average, it isn't in\nA. danger\nB. safe ranges\n"
       "Answer: Let's think step-by-step.\n"
       "First, let's answer non-negated question: \"If a cat has a body temp that is below average, it is in?\"\n"
       "For this non-negated question, we have A.\n"
       "Then, to answer the negated question, take the other answer, which would be B.\n"
       "So the answer is B.\n\n"
       "Question: As the barometer reading goes lower there is not a greater chance of\nA. sunshine\nB. getting wet\n"
       "Answer: Let's think step-by-step.\n"
       "First, let's answer non-negated question: \"As the barometer reading goes lower there is a greater chance of?\"\n"
       "For this non-negated question, we have B.\n"
       "Then, to answer the negated question, take the other answer, which would be A.\n"
       "So the answer is A.\n\n"
       "Question: Coral is a type of living organism which cannot be identified in\n"
       "A. saltwater locations that are open\nB. any where with liquid\n"
       "Answer: Let's think step-by-step.\n"
       "First, let's answer non-negated question: \"Coral is a type of living organism which can be identified in?\"\n"
       "For this non-negated question, we have A.\n"
       "Then, to answer the negated question, take the other answer, which would be B.\n"
       "So the answer is B.\n\n")
PAPER = {
    "zeroshot": HEAD + "\n\n" + Q,
    "zeroshot_hint": HEAD + " Note that if there is a negation in the question, we should choose the wrong answer "
                            "to the original question.\n\n" + Q,
    "fewshot": HEAD + "\n\n" + SHOTS + Q,
    "fewshot_hint": HEAD + " Note that if there is a negation in the question, we should choose the wrong answer "
                           "to the non-negated question.\n\n" + SHOTS + Q,
    "fewshot_cot": HEAD + "\n\n" + COT + Q,
}
PAIR0 = ('Sentence 1: "Eden Roc Renaissance Hotel Miami Beach is a hotel."\n'
         'Sentence 2: "Eden Roc Renaissance Hotel Miami Beach is not a hotel."\n'
         'Question: The above two sentences are?\nA. the same\nB. different\nAnswer:')
PAIR1 = ('Sentence 1: "The Betty Hutton Show was originally aired on cbs."\n'
         'Sentence 2: "The Betty Hutton Show was not originally aired on cbs."\n'
         'Question: The above two sentences are?\nA. different\nB. the same\nAnswer:')
STRONG = "Negated sentences are different from original sentences.\n\n"


@pytest.mark.parametrize("method", sorted(PAPER))
def test_neqa_prompt_equals_the_papers(method):
    assert neqa_prompt(ITEM, method).encode() == PAPER[method].encode()


def test_task2_prompts_equal_the_papers():
    assert task2_prompt(TASK2[0], "weak").encode() == PAIR0.encode()
    assert task2_prompt(TASK2[1], "weak").encode() == PAIR1.encode()
    assert task2_prompt(TASK2[0], "strong").encode() == (STRONG + PAIR0).encode()
    assert task2_prompt(TASK2[1], "strong").encode() == (STRONG + PAIR1).encode()
    # the paper's answer is always "different", wherever it stands
    assert [t["choices"][t["answer"]] for t in TASK2] == ["different", "different"]
