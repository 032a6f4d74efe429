"""The scoring benchmark's pure parts (FLOP counting, lm-eval sample mapping, task YAML = our prompt) and a
tiny-model smoke run of both sides (the lm-eval side only where lm_eval is importable). Nothing is timed."""
from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

from benchmarks import score_throughput as bench
from data_pipeline.export import harness_yaml, read_harness_yaml, write_harness_task
from data_pipeline.prompts import neqa_prompt
from data_pipeline.schema import load_neqa
from neqa.device import non_embedding_params

ITEMS = load_neqa(REPO / "data_pipeline" / "neqa_100.jsonl")[:6]
HAS_LM_EVAL = importlib.util.find_spec("lm_eval") is not None


def test_unique_tokens_counts_the_shared_prefix_once():
    prefix = [1, 2, 3, 4]
    prompts = [[1, 2, 3, 4, 10, 11], [1, 2, 3, 4, 12], [1, 2, 3, 4, 13, 14, 15]]
    assert bench.unique_tokens(prefix, prompts) == 4 + 2 + 1 + 3
    # a prompt that shares only part of the prefix shortens the part counted once
    assert bench.unique_tokens(prefix, [[1, 2, 9, 9], [1, 2, 3, 4, 5]]) == 2 + 2 + 3
    assert bench.unique_tokens([], [[5, 6], [7]]) == 3
    assert bench.unique_tokens(prefix, []) == 0


def test_useful_flops_formula():
    # 100 tokens through 1e6 non-embedding weights, 10 answer positions through a 64 x 500 output layer
    assert bench.useful_flops(100, 10, 10**6, 64, 500) == 2 * 100 * 10**6 + 2 * 10 * 64 * 500


def test_nonembedding_params_of_gpt2_match_the_closed_form():
    from transformers import GPT2Config, GPT2LMHeadModel
    L, d = 3, 32
    model = GPT2LMHeadModel(GPT2Config(n_layer=L, n_embd=d, n_head=2, vocab_size=123, n_positions=64))
    # per block: 2 layer norms (4d), qkv (3d^2 + 3d), attention out (d^2 + d), MLP (8d^2 + 5d); final norm 2d
    assert non_embedding_params(model) == L * (12 * d * d + 13 * d) + 2 * d
    assert non_embedding_params(model) == sum(p.numel() for p in model.parameters()) - 123 * d - 64 * d


def _samples(prompts, logprobs, order):
    return [{"doc_id": i, "arguments": [(prompts[i], " A"), (prompts[i], " B")],
             "resps": [[(lp, False)] for lp in logprobs[i]]} for i in order]


def test_table_reports_both_shares_of_peak():
    row = {"prompt": "fewshot", "ours_items_per_s": 16.0, "lm_eval_items_per_s": 2.0, "speedup": 8.0,
           "cpu_speedup": 7.5, "max_logprob_diff": 2e-6, "ours_accuracy": 0.5, "lm_eval_accuracy": 0.5,
           "ours_flops_per_s": 75e9, "ours_share_of_peak_around": 0.625, "lm_eval_flops_per_s": 10e9,
           "ours_peak_rss_mb": 1000.0, "lm_eval_peak_rss_mb": 3000.0, "ours_path": "prefix-cache"}
    report = {"matmul_peak_flops_per_s": 150e9, "model_size": "tiny", "threads": 2, "batch_size": 16, "items": 48,
              "load_before": [1.0], "load_after": [1.0], "rows": [row],
              "model": {"params": 1e6, "nonembedding_params": 5e5, "vocab": 100}}
    line = bench.format_table(report).splitlines()[-1]
    assert "75.0 (50%) [62%]" in line and "8.00x" in line and "1000/3000" in line


def test_matmul_peak_is_a_positive_rate():
    assert 1e6 < bench.matmul_peak(32, 1, rows=64, tries=2, seconds=0.01) < 1e14


def test_lm_eval_samples_map_back_to_our_items():
    prompts = [neqa_prompt(it, "fewshot") for it in ITEMS[:3]]
    logprobs = [[-1.0, -2.0], [-3.0, -0.5], [-0.25, -4.0]]
    assert bench.lm_eval_logprobs(_samples(prompts, logprobs, [2, 0, 1]), prompts) == logprobs
    assert bench.accuracy(logprobs, [0, 1, 1]) == pytest.approx(2 / 3)
    assert bench.max_abs_diff(logprobs, [[-1.0, -2.5], [-3.0, -0.5], [-0.25, -4.0]]) == 0.5
    with pytest.raises(ValueError, match="no sample for items \\[1\\]"):
        bench.lm_eval_logprobs(_samples(prompts, logprobs, [2, 0]), prompts)
    wrong = _samples(prompts, logprobs, [0, 1, 2])
    wrong[1]["arguments"][0] = (prompts[1] + " ", " A")
    with pytest.raises(ValueError, match="item 1 scored a different text"):
        bench.lm_eval_logprobs(wrong, prompts)


@pytest.mark.parametrize("method", bench.PROMPTS)
def test_task_yaml_renders_our_prompt(method, tmp_path):
    import jinja2
    config = read_harness_yaml(harness_yaml(bench.task_name(method), method, str(tmp_path / "items.jsonl")))
    assert config["task"] == bench.task_name(method)
    template = jinja2.Template(config["doc_to_text"], keep_trailing_newline=True)
    for it in ITEMS:
        assert template.render(**it) == neqa_prompt(it, method)
    assert [config["target_delimiter"] + c for c in config["doc_to_choice"]] == bench.OPTIONS


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    from neqa.io import write_jsonl
    tmp = tmp_path_factory.mktemp("bench")
    info = bench.build_model(tmp / "model", "tiny", ITEMS)
    items_file = tmp / "items.jsonl"
    write_jsonl(items_file, [{"question": it["question"], "choices": it["choices"], "answer": it["answer"]}
                             for it in ITEMS])
    (tmp / "tasks").mkdir()
    write_harness_task(tmp / "tasks", bench.task_name("fewshot"), "fewshot", str(items_file))
    job = {"prompt": "fewshot", "model_dir": str(tmp / "model"), "items_file": str(items_file),
           "yaml_dir": str(tmp / "tasks"), "batch_size": 4, "threads": 1, "d_model": info["d_model"]}
    return info, job


def test_tiny_model_and_our_side(tiny_bench):
    info, job = tiny_bench
    assert info["nonembedding_params"] < info["params"] and info["vocab"] <= bench.TOKENIZER_VOCAB
    res = bench.worker({**job, "side": "ours"})
    assert res["n_items"] == len(ITEMS) and len(res["logprobs"]) == len(ITEMS)
    assert res["path"] == "prefix-cache" and res["seconds"] > 0 and res["peak_rss_mb"] > 0
    assert len(res["peaks"]) == 2 and min(res["peaks"]) > 0
    for lp in res["logprobs"]:   # two options, proper log-probabilities of distinct tokens
        assert len(lp) == 2 and all(x < 0 for x in lp) and sum(2.718281828 ** x for x in lp) < 1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval is not installed (pip install -r benchmarks/requirements.txt)")
def test_tiny_model_lm_eval_side_agrees(tiny_bench):
    _, job = tiny_bench
    ours = bench.worker({**job, "side": "ours"})
    theirs = bench.worker({**job, "side": "lm-eval"})
    assert bench.max_abs_diff(ours["logprobs"], theirs["logprobs"]) < 1e-4
