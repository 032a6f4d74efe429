from data_pipeline.prompts import neqa_prompt
from eval_pipeline.tasks import get_task

ITEM = {"question": "The heron does not live in the", "choices": ["marsh", "desert"], "answer": 1}


def test_cloze_scores_option_text_after_the_bare_question():
    req = get_task("neqa").request(ITEM, "cloze")
    assert req.context == "The heron does not live in the"
    assert req.options == [" marsh", " desert"]
    assert get_task("neqa").shared_prefix("cloze", [ITEM]) == ""


def test_letter_prompts_read_the_answer_letter():
    req = get_task("task1").request(ITEM, "zeroshot")
    assert req.context == neqa_prompt(ITEM, "zeroshot") and req.context.endswith("\nB. desert\nAnswer:")
    assert req.options == [" A", " B"]


def test_cloze_is_part_of_all_prompts_for_qa_tasks_only():
    assert "cloze" in get_task("neqa").prompts and "cloze" in get_task("task1").prompts
    assert "cloze" not in get_task("task2").prompts
