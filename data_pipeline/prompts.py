"""The paper's prompt texts, as pure functions of an item.

Shared by the exports (inverse-scaling-prize tables) and the evaluation pipeline,
so the two can never disagree about what a prompt looks like.

Item format: {"question": str, "choices": [str, str], "answer": int}.
"""
from __future__ import annotations

HEADER = "The following are multiple choice questions (with answers) about common sense."
HINT = " Note that if there is a negation in the question, we should choose the wrong answer to the original question."
# The paper's code words the few-shot hint differently from the zero-shot one (eval_pipeline/data.py of
# yuhui-zh15/NeQA, prompt_fewshot_hint); kept as it is so that our prompts equal theirs byte for byte.
FEWSHOT_HINT = " Note that if there is a negation in the question, we should choose the wrong answer to the non-negated question."
LETTERS = "AB"

# (question, choices, answer, the same question without its negation) — the paper's three shots.
FEW_SHOT = [
    ("If a cat has a body temp that is below average, it isn't in", ["danger", "safe ranges"], 1,
     "If a cat has a body temp that is below average, it is in"),
    ("As the barometer reading goes lower there is not a greater chance of", ["sunshine", "getting wet"], 0,
     "As the barometer reading goes lower there is a greater chance of"),
    ("Coral is a type of living organism which cannot be identified in", ["saltwater locations that are open", "any where with liquid"], 1,
     "Coral is a type of living organism which can be identified in"),
]

NEQA_PROMPTS = ("zeroshot", "zeroshot_hint", "fewshot", "fewshot_hint", "fewshot_cot")
# Cloze scoring: no header and no letters; each option's own text is scored after the question
# ("The heron does not live in the" + " marsh"). The inverse-scaling-prize style reading of a
# question, and the one small models can do before they can match options to letters.
CLOZE = "cloze"
TASK2_PROMPTS = ("weak", "strong")
TASK2_HINT = "Negated sentences are different from original sentences."


def question_block(question: str, choices: list[str]) -> str:
    lines = [f"Question: {question}"] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines) + "\nAnswer:"


def cot_answer(answer: int, plain_question: str) -> str:
    """The worked chain-of-thought answer of one few-shot example (the text after 'Answer:')."""
    negated, plain = LETTERS[answer], LETTERS[1 - answer]
    return (f" Let's think step-by-step.\n"
            f"First, let's answer non-negated question: \"{plain_question}?\"\n"
            f"For this non-negated question, we have {plain}.\n"
            f"Then, to answer the negated question, take the other answer, which would be {negated}.\n"
            f"So the answer is {negated}.")


def prefix(method: str) -> str:
    """Everything before the item's own question: identical for every item of a method."""
    if method not in NEQA_PROMPTS:
        raise ValueError(f"unknown prompt method {method!r}; choose from {', '.join(NEQA_PROMPTS)}")
    hint = {"zeroshot_hint": HINT, "fewshot_hint": FEWSHOT_HINT}.get(method, "")
    header = HEADER + hint
    text = header + "\n\n"
    if method.startswith("fewshot"):
        for q, choices, answer, plain in FEW_SHOT:
            solved = cot_answer(answer, plain) if method == "fewshot_cot" else f" {LETTERS[answer]}"
            text += question_block(q, choices) + solved + "\n\n"
    return text


def neqa_prompt(item: dict, method: str) -> str:
    """The full prompt; the model's next token is read (' A' vs ' B') or, for CoT, generated."""
    return prefix(method) + question_block(item["question"], item["choices"])


def task2_prompt(item: dict, method: str) -> str:
    """Task 2 (negation understanding). Item: {"sentence1", "sentence2", "choices": ["the same",
    "different"] in either order, "answer"}; the paper gives no header and no shots."""
    if method not in TASK2_PROMPTS:
        raise ValueError(f"unknown task-2 prompt {method!r}; choose from {', '.join(TASK2_PROMPTS)}")
    head = TASK2_HINT + "\n\n" if method == "strong" else ""
    pair = f'Sentence 1: "{item["sentence1"]}"\nSentence 2: "{item["sentence2"]}"\n'
    return head + pair + question_block("The above two sentences are?", item["choices"])
