"""LoRA training on the real SmolLM2 (transformers loads the GGUF), export to GGUF, llama.cpp serving."""

from pathlib import Path

import pytest

from ml.engine import LlamaEngine
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS
from ml.registry import resolve_model
from ml.train import REPLY_END, TrainConfig, TrainSample, encode, split_samples, train_lora
from tests.fixtures.voice_samples import HELD_OUT, SIGN_OFF, samples

BASE = resolve_model("smollm2-135m-instruct", None, Path("/nonexistent"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("adapter") / "adapter.gguf"
    steps = []
    result = train_lora(BASE.path, [TrainSample(p, r) for p, r in samples()], TrainConfig(threads=2), path,
                        on_progress=lambda step, total, r: steps.append((step, total, len(r.train_loss))),
                        keep_model=True)
    return result, path, steps


def test_split_keeps_both_sides():
    items = [TrainSample(str(i), "r") for i in range(10)]
    train, held = split_samples(items, 0.2, seed=0)
    assert len(held) == 2 and len(train) == 8 and not set(held) & set(train)
    assert split_samples(items[:2], 0.9, seed=0)[0]  # never an empty train set


def test_loss_only_on_the_reply_tokens():
    from ml.train import load_base

    tokenizer, _ = load_base(BASE.path)
    item = encode(tokenizer, TrainSample("Them: hi\nMe:", "hello there", 0.7), max_length=64)
    n_prompt = len(tokenizer("Them: hi\nMe:", add_special_tokens=False).input_ids)
    assert item["labels"][:n_prompt] == [-100] * n_prompt
    assert tokenizer.decode(item["labels"][n_prompt:]) == " hello there" + REPLY_END
    assert item["weight"] == 0.7


def test_training_lowers_eval_loss_and_reports_every_step(trained):
    result, _, steps = trained
    assert result.eval_loss[-1] < result.eval_loss[0] - 1.0, result.eval_loss
    assert [s[0] for s in steps] == list(range(1, result.steps + 1))
    assert all(n == step for step, _, n in steps)
    assert result.seconds_per_step > 0


def test_after_the_eval_split_chose_the_epoch_every_sample_trains_and_the_judge_gets_the_split_adapter(trained):
    from ml import lora_export

    result, path, steps = trained
    assert result.refit and result.best_epoch >= 1
    assert result.held_out_adapter == path.with_name("adapter.held-out.gguf") and result.held_out_adapter.exists()
    # the refit ran the chosen epochs over every sample: its steps come after the split's
    every = -(-(result.train_samples + result.eval_samples) // TrainConfig().batch_size)
    assert result.steps == result.steps_per_epoch * result.epochs_run + every * result.best_epoch
    # a small set gets enough passes for min_steps updates, unless early stopping ended it sooner
    assert result.steps_per_epoch * result.epochs_run >= TrainConfig().min_steps or result.best_epoch < result.epochs_run
    # the served file is the refit model; the judged one is another model (it never saw the eval split)
    texts = [p + " " + r for p, r in samples()[:4]]
    served = lora_export.export_divergence(result.model, result.tokenizer, BASE.path, path, texts)
    judged = lora_export.export_divergence(result.model, result.tokenizer, BASE.path, result.held_out_adapter, texts)
    assert judged > 3 * served, (judged, served)


def test_a_job_stopped_during_the_refit_leaves_no_adapter_behind(tmp_path):
    """The worker stops a trainer whose parent died (SystemExit from the progress callback): neither the
    split's adapter, exported for the judge just before the refit, nor a half-made one is left."""
    path = tmp_path / "job.gguf"

    def stop_in_the_refit(step, total, result):
        if path.with_name("job.held-out.gguf").exists():  # the refit's first step
            raise SystemExit(3)

    with pytest.raises(SystemExit):
        train_lora(BASE.path, [TrainSample(p, r) for p, r in samples()[:8]],
                   TrainConfig(threads=2, epochs=2, min_steps=0), path, on_progress=stop_in_the_refit)
    assert list(tmp_path.iterdir()) == []


def test_the_export_check_reads_a_sample_longer_than_its_context(trained):
    """A sample of a few thousand tokens (a long prompt; an imported message of 100,000 characters): training
    reads 512 of them, and the export check ran all of them through a 2048-token llama.cpp context, failing the
    job after training (llama_decode returned 1), at every retry (the split is seeded)."""
    from ml import lora_export

    result, path, _ = trained
    prompt, reply = samples()[0]
    long_text = "Them: " + "could you tell me more about that " * 500 + "\nMe: " + reply
    assert len(result.tokenizer(long_text).input_ids) > 3000
    assert lora_export.export_divergence(result.model, result.tokenizer, BASE.path, path, [long_text]) <= 1.5


def test_export_agrees_with_peft_and_the_permutation_matters(trained, tmp_path, monkeypatch):
    from ml import lora_export

    result, path, _ = trained
    assert 0 < result.export_divergence <= 1.5
    texts = [p + " " + r for p, r in samples()[:4]]
    right = lora_export.export_divergence(result.model, result.tokenizer, BASE.path, path, texts)
    # without permuting q/k lora_B back, llama.cpp applies the adapter to the wrong rows: worse, silently
    monkeypatch.setattr(lora_export, "permute_rows", lambda w, *_: w)
    wrong = tmp_path / "wrong.gguf"
    lora_export.export_gguf_adapter(result.model, wrong, alpha=16)
    bad = lora_export.export_divergence(result.model, result.tokenizer, BASE.path, wrong, texts)
    assert right <= 1.5 < bad and bad > 2 * right, (right, bad)
    # an adapter that changes nothing (lora_B all zeros) is far from the trained model
    import torch

    trained_b = {k: v.clone() for k, v in result.model.state_dict().items() if "lora_B" in k}
    with torch.no_grad():
        for k in trained_b:
            result.model.state_dict()[k].zero_()
    zeros = tmp_path / "zeros.gguf"
    lora_export.export_gguf_adapter(result.model, zeros, alpha=16)
    result.model.load_state_dict(trained_b, strict=False)
    assert lora_export.export_divergence(result.model, result.tokenizer, BASE.path, zeros, texts) > 50


def test_llama_cpp_serves_the_adapter_and_rolls_back_in_place(trained):
    _, path, _ = trained
    engine = LlamaEngine.load(BASE, context_size=2048, gpu_layers=0, threads=2)
    params, stops = GenerationParams(max_tokens=40), list(BASE_STOPS)
    base = engine.generate(HELD_OUT, params, stops).text
    assert engine.generate_many(HELD_OUT, [params, params], stops)[1].text == base  # the batch context exists
    engine.use_adapter(str(path))
    tuned = engine.generate(HELD_OUT, params, stops).text
    batched = engine.generate_many(HELD_OUT, [params, params], stops)  # the switch reached the batch context
    engine.use_adapter(None)
    back = engine.generate(HELD_OUT, params, stops).text
    assert SIGN_OFF.split(",")[0] in tuned or "Blue Salon" in tuned, tuned
    assert "Blue Salon" not in base
    assert back == base
    # the switch reached the batch context: both sequences speak in the voice. (Not always word for word
    # the reply made alone: with an adapter a batch was seen to part from one alone at a near-tie —
    # "10am" alone, "7pm" in a batch, confidence 0.774 vs 0.773; ml.engine.generate_many.)
    assert batched[0].text == batched[1].text and "Blue Salon" in batched[0].text, batched
    assert engine.generate_many(HELD_OUT, [params, params], stops)[1].text == base
    with pytest.raises(RuntimeError, match="missing"):
        engine.use_adapter("/nonexistent/adapter.gguf")



def test_the_adapter_carries_its_replies_fingerprints_and_a_recital_is_answered_by_the_base_model(trained, tmp_path):
    """A voice trained hard on a few replies says one of them, word for word, to a question it never saw
    (a small adapter memorizes); served, that memory is not (ml.recital, ml.suggestions.run_generation)."""
    from ml import recital
    from ml.prompt import Turn
    from ml.suggestions import run_generation

    _, path, _ = trained  # the defaults' adapter carries the fingerprints of every reply it learned
    assert recital.learned(str(path)) == frozenset(recital.fingerprints([r for _, r in samples()]))
    few = samples()[:6]
    replies = [r for _, r in few]
    hard = tmp_path / "hard.gguf"  # 8 passes at 3e-3 over 6 samples (≈45 s): it recites
    train_lora(BASE.path, [TrainSample(p, r) for p, r in few], TrainConfig(threads=2, epochs=8, min_steps=0,
                                                                          learning_rate=3e-3, refit=False,
                                                                          patience=99), hard)
    engine = LlamaEngine.load(BASE, context_size=2048, gpu_layers=0, threads=2)
    params, stops = GenerationParams(max_tokens=40), list(BASE_STOPS)
    asked = "Them: Can you do my hair for a wedding?\nMe:"
    engine.use_adapter(str(hard))
    voice = engine.generate(asked, params, stops).text.strip()
    assert voice in replies, voice  # the voice on its own: a training reply ("No problem, see you soon. …")
    engine.use_adapter(None)
    base = engine.generate(asked, params, stops).text
    _, served = run_generation(engine, [Turn("Them", "Can you do my hair for a wedding?")], None, stops, str(hard),
                               params, 1)
    assert served[0].text == base and served[0].text.strip() != voice
    # with that reply in the prompt (the provider's own example), saying it again is their answer: it stays
    shown = [Turn("Them", "Sorry, running late!"), Turn("Me", voice), Turn("Them", "Can you do my hair for a wedding?")]
    _, served = run_generation(engine, shown, None, stops, str(hard), params, 1)
    assert served[0].text.strip() == voice, served[0].text
