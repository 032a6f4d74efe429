"""The model factory and the training loop: learning, resuming, skipping, checkpoints."""
import math

import pytest
import torch

from neqa.device import non_embedding_params
from simulation.loop import TrainConfig, loss_of, lr_at, read_log, split_batch, stream_batch, train
from simulation.model import make_model, train_flops

V = 32


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest: torch on one thread


def chain_stream(n=4000, seed=0):
    """Tokens whose successor is a fixed function of the token: uniform unigrams (loss ln V
    for a model that knows nothing) but perfectly predictable bigrams."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(V, generator=g)
    out = [0]
    for _ in range(n - 1):
        out.append(int(perm[out[-1]]))
    return torch.tensor(out)


def tiny_model(seed=0):
    return make_model(V, n_layer=1, n_head=2, n_embd=16, n_positions=32, seed=seed)


def cfg(**kw):
    base = dict(steps=40, batch_size=4, seq_len=16, lr=1e-2, warmup=5, progress=False, log_every=10)
    base.update(kw)
    return TrainConfig(**base)


def test_train_flops_is_6nd():
    assert train_flops(1000, 2000) == 6 * 1000 * 2000
    assert train_flops(7e7, 3e11) == pytest.approx(1.26e20)


def test_non_embedding_params_counts_blocks_only():
    m = make_model(V, n_layer=2, n_head=2, n_embd=16, n_positions=32)
    d = 16
    per_block = 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert non_embedding_params(m) == 2 * per_block + 2 * d   # + final layer norm
    total = sum(p.numel() for p in m.parameters())
    assert total - non_embedding_params(m) == V * d + 32 * d   # wte (tied head) + wpe


def test_make_model_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = tiny_model(0), tiny_model(0), tiny_model(1)
    assert torch.equal(torch.get_rng_state(), state)
    wa, wb, wc = (m.transformer.h[0].attn.c_attn.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_lr_schedule_warms_up_then_decays():
    c = cfg(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1)
    assert lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(99, c) < lr_at(50, c) < lr_at(10, c)
    assert lr_at(100, c) == pytest.approx(0.1)


def test_weighted_loss_is_the_weighted_mean_of_token_losses():
    """Against a hand computation from the logits: sum(w * -log p(y)) / sum(w), targets -100 left out."""
    model = tiny_model()
    x = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(2))
    y[0, 0] = -100
    w = torch.ones(2, 6)
    w[1, 3] = 30.0
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=x).logits, dim=-1)
        nll = [(-logp[b, t, y[b, t]].item(), w[b, t].item()) for b in range(2) for t in range(6) if y[b, t] != -100]
        device = torch.device("cpu")
        weighted = loss_of(model, x, y, device, w).item()
        plain = loss_of(model, x, y, device).item()
    assert weighted == pytest.approx(sum(n * k for n, k in nll) / sum(k for _, k in nll), rel=1e-5)
    assert plain == pytest.approx(sum(n for n, _ in nll) / len(nll), rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)
    assert split_batch((x, y, w))[2] is not None and split_batch(torch.zeros(2, 7))[2] is None


def test_stream_batch_windows_are_contiguous():
    s = torch.arange(100)
    b = stream_batch(s, 3, 8, torch.Generator().manual_seed(0))
    assert b.shape == (3, 9)
    assert torch.equal(b[:, 1:] - b[:, :-1], torch.ones(3, 8, dtype=torch.long))
    with pytest.raises(ValueError):
        stream_batch(torch.arange(5), 1, 8, torch.Generator())


def test_training_lowers_loss_and_writes_outputs(tmp_path):
    stream = chain_stream()
    model = tiny_model()
    history = train(model, stream, cfg(steps=60, ckpt_every=30, eval_every=30), tmp_path / "run",
                    val_tokens=chain_stream(1000, seed=0), log=lambda *_: None)
    assert history[0]["loss"] > 0.8 * math.log(V)          # starts near ln V
    assert history[-1]["val_loss"] < 0.5 * math.log(V)     # learned the successor function
    assert [r["step"] for r in history] == [10, 20, 30, 40, 50, 60]
    assert history[-1]["tokens"] == 60 * 4 * 16
    assert history[-1]["flops"] == train_flops(non_embedding_params(model), 60 * 4 * 16)
    assert read_log(tmp_path / "run" / "train_log.jsonl") == history
    for folder in ("final", "checkpoints/step-30", "checkpoints/step-60"):
        assert (tmp_path / "run" / folder / "config.json").exists()
    assert not (tmp_path / "run" / "state.pt").exists()
    from transformers import AutoModelForCausalLM
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final")
    x = stream[:16][None]
    assert torch.allclose(loaded(x).logits, model(x).logits, atol=1e-5)


def test_resume_after_crash_continues_from_saved_step(tmp_path):
    stream = chain_stream()
    c = cfg(steps=40, state_every=10)
    reference = train(tiny_model(), stream, c, tmp_path / "ref", log=lambda *_: None)

    def crashing(step, g):
        if step == 25:
            raise RuntimeError("simulated crash")
        return stream_batch(stream, c.batch_size, c.seq_len, g)

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_model(), crashing, c, tmp_path / "run", log=lambda *_: None)
    assert (tmp_path / "run" / "state.pt").exists()
    assert not (tmp_path / "run" / "final").exists()
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=False)["step"] == 20

    messages, seen_steps = [], []

    def counting(step, g):
        seen_steps.append(step)
        return stream_batch(stream, c.batch_size, c.seq_len, g)

    resumed = train(tiny_model(seed=99), counting, c, tmp_path / "run", log=messages.append)
    assert seen_steps == list(range(20, 40))                 # not from 0
    assert any("from step 20" in m for m in messages)
    assert [r["step"] for r in resumed] == [10, 20, 30, 40]  # no duplicated rows
    assert resumed[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-4)
    assert resumed[-1]["tokens"] == reference[-1]["tokens"] == 40 * c.batch_size * c.seq_len


def test_complete_final_skips_training_and_loads_weights(tmp_path):
    stream = chain_stream()
    first = tiny_model()
    history = train(first, stream, cfg(steps=20), tmp_path / "run", log=lambda *_: None)

    def never(step, g):
        raise AssertionError("trained again")

    other = tiny_model(seed=5)
    again = train(other, never, cfg(steps=20), tmp_path / "run", log=lambda *_: None)
    assert again == history
    for p, q in zip(first.parameters(), other.parameters()):
        assert torch.equal(p.detach().cpu(), q.detach().cpu())
