"""The training loop's seeds and speed fields: repeated runs are identical, a resumed run is the uninterrupted
one bit for bit, and the FLOP/s and MFU of the log follow their documented formulas (checked against counts
made by hand here). No timing is asserted: speed is the benchmark's job (benchmarks/train_speed.py)."""
import json

import pytest
import torch

import neqa.device as device_mod
from simulation.loop import TrainConfig, read_log, stream_batch, train
from simulation.model import make_model

V = 32
pytestmark = pytest.mark.usefixtures("one_thread")   # conftest: torch on one thread
quiet = lambda *_: None  # noqa: E731


def stream(n=3000, seed=0):
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(seed))


def model(seed=0):
    return make_model(V, n_layer=2, n_head=2, n_embd=16, n_positions=32, seed=seed)


def cfg(**kw):
    return TrainConfig(**{**dict(steps=12, batch_size=4, seq_len=16, lr=1e-2, warmup=2, progress=False,
                                 log_every=4), **kw})


def weights(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def losses(rows):
    return [(r["step"], r["loss"], r["val_loss"]) for r in rows]


def test_same_seed_same_weights_and_losses_other_seed_differs(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        m = model()
        rows = train(m, stream(), cfg(seed=seed), tmp_path / name, val_tokens=stream(500, seed=9), log=quiet)
        runs[name] = (weights(m), losses(rows))
    assert same_weights(runs["a"][0], runs["b"][0])
    assert runs["a"][1] == runs["b"][1]                      # exactly, not approximately
    assert not same_weights(runs["a"][0], runs["c"][0])      # the loop's seed picks other batches
    assert runs["a"][1] != runs["c"][1]


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
    c = cfg(state_every=4)
    ref_model = model()
    reference = train(ref_model, stream(), c, tmp_path / "ref", log=quiet)
    data = stream()

    def crashing(step, g):
        if step == 9:
            raise RuntimeError("simulated crash")
        return stream_batch(data, c.batch_size, c.seq_len, g)

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(model(), crashing, c, tmp_path / "run", log=quiet)
    resumed_model = model(seed=7)                           # other weights: state.pt must replace them all
    resumed = train(resumed_model, data, c, tmp_path / "run", log=quiet)
    assert same_weights(weights(ref_model), weights(resumed_model))
    assert losses(resumed) == losses(reference)


def test_speed_fields_follow_the_documented_formulas(tmp_path):
    d, n_layer, T, B = 16, 2, 16, 4
    # GPT-2 block by hand: 2 layer norms, c_attn (d x 3d + 3d), c_proj (d x d + d), MLP (d x 4d + 4d, 4d x d + d)
    per_block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    n_hand = n_layer * per_block + 2 * d                     # + the final layer norm
    rows = train(model(), stream(), cfg(steps=8, log_every=4), tmp_path / "run", log=quiet)
    assert read_log(tmp_path / "run" / "train_log.jsonl") == rows
    peaks = {r["peak_flops_per_s"] for r in rows}
    assert len(peaks) == 1 and 1e6 < peaks.pop() < 1e16     # measured once per run, a plausible rate
    for r in rows:
        assert r["threads"] == 1
        assert r["flops_per_s"] == pytest.approx(6 * n_hand * r["tokens_per_s"], rel=1e-9)
        assert r["attention_flops_per_s"] == pytest.approx(6 * n_layer * T * d * r["tokens_per_s"], rel=1e-9)
        assert r["mfu"] == pytest.approx(r["flops_per_s"] / r["peak_flops_per_s"], rel=1e-12)
    assert rows[-1]["tokens"] == 8 * B * T


def test_matmul_peak_is_flops_over_seconds(monkeypatch):
    """With a clock that advances 10 ms per reading, each timed loop takes 10 ms: the warm-up picks
    reps = 0.05 / 0.01 = 5 products, so the rate is 2·m·k·n·5 / 0.01 exactly."""
    clock = iter(i * 0.01 for i in range(10_000))
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    m, k, n = 8, 4, 6
    assert device_mod.matmul_peak("cpu", shape=(m, k, n), seconds=0.05, tries=3) == pytest.approx(2 * m * k * n * 5 / 0.01)


def test_train_speed_benchmark_writes_its_report(tmp_path, capsys):
    from benchmarks.train_speed import main
    out = tmp_path / "speed.json"
    assert main(["--members", "tw-0.1m", "--batches", "2x16,2x8", "--steps", "2", "--warmup", "1",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(c["batch_size"], c["seq_len"]) for c in report["cells"]] == [(2, 16), (2, 8)]
    for c in report["cells"]:
        assert c["member"] == "tw-0.1m" and c["steps_timed"] == 2 and c["d_model"] == 64
        assert c["flops_per_s"] == pytest.approx(6 * c["non_embedding_params"] * c["tokens_per_s"], rel=1e-9)
        assert c["mfu"] > 0 and c["peak_flops_per_s"] > 0
    assert report["target"]["met"] is False                  # tw-3m and tw-10m were not measured
    assert len(report["load_before"]) == 3 and "MFU" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [(["--batches", "16by256"], "--batches"), (["--members", "tw-99m"], "tw-99m"),
                                         (["--steps", "0"], "--steps")])
def test_train_speed_bad_arguments(argv, needle, capsys):
    from benchmarks.train_speed import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
