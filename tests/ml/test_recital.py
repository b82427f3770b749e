"""A trained voice reciting a training reply that nothing shown to it says (ml.recital), with a scripted
engine (fast); the real adapter's fingerprints and the real model are in tests/ml/test_train.py."""

from pathlib import Path

import pytest

from ml import recital
from ml.engine import FakeEngine, Generation
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS, Turn
from ml.suggestions import run_generation

TRAINED = "A full groom is $65 and takes 2 hours. Paws & Claws, Maya"


def adapter_file(where: Path, replies: list[str]) -> str:
    """An adapter file as ml.lora_export writes its metadata (no tensors: the scripted engine loads none)."""
    import gguf

    path = where / "adapter.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_array(recital.KEY, recital.fingerprints(replies))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


class VoiceEngine(FakeEngine):
    """With the adapter, its scripted replies in order; without it, the base model's one reply."""

    def __init__(self, voice: list[str], base: str):
        super().__init__()
        self.voice, self.base, self.prompts = list(voice), base, []

    def generate(self, prompt, params, stop=(), on_text=None, session=None):
        text = self.voice.pop(0) if self.adapter else self.base
        self.prompts.append((self.adapter, prompt))
        if on_text:
            on_text(text)
        return Generation(text, 0.5, len(text.split()), 3, 0.0)


def test_fingerprints_ignore_case_spacing_and_punctuation_and_keep_no_text():
    assert recital.fingerprint("A full groom is $65!") == recital.fingerprint("a full  groom is 65")
    assert recital.fingerprint("A full groom is $65") != recital.fingerprint("A full groom is $75")
    assert recital.fingerprints(["Hi!", "hi", "", "  "]) == [recital.fingerprint("hi")]
    assert all(len(f) == 16 and "groom" not in f for f in recital.fingerprints([TRAINED]))


def test_a_training_reply_the_prompt_does_not_hold_is_answered_by_the_base_model_instead(tmp_path):
    path = adapter_file(tmp_path, [TRAINED, "We are closed on Sundays. Paws & Claws, Maya"])
    assert recital.learned(path) == frozenset(recital.fingerprints([TRAINED, "We are closed on Sundays. "
                                                                              "Paws & Claws, Maya"]))
    engine = VoiceEngine([TRAINED], "Let me check the kitten prices and get back to you.")
    streamed = []
    prompt, found = run_generation(engine, [Turn("Them", "Could you groom my kitten?")], None, list(BASE_STOPS),
                                   path, GenerationParams(), 1, on_text=streamed.append)
    assert [g.text for g in found] == ["Let me check the kitten prices and get back to you."]
    assert [adapter for adapter, _ in engine.prompts] == [path, None]  # the same prompt, the base model
    assert engine.prompts[0][1] == engine.prompts[1][1] == prompt
    assert streamed[-1] == found[0].text  # whoever watches the stream sees the reply that is served


def test_a_training_reply_the_examples_hold_is_the_providers_answer_and_stays(tmp_path):
    path = adapter_file(tmp_path, [TRAINED])
    engine = VoiceEngine(["a FULL groom is $65 and takes 2 hours - Paws & Claws, Maya"], "never asked")
    turns = [Turn("Them", "How much is a full groom?"), Turn("Me", TRAINED), Turn("Them", "Price of a full groom?")]
    _, found = run_generation(engine, turns, None, list(BASE_STOPS), path, GenerationParams(), 1)
    assert [g.text for g in found] == ["a FULL groom is $65 and takes 2 hours - Paws & Claws, Maya"]
    assert [adapter for adapter, _ in engine.prompts] == [path]


def test_the_voices_other_recitals_are_dropped_and_its_other_replies_follow_the_base_models(tmp_path):
    path = adapter_file(tmp_path, [TRAINED, "We are closed on Sundays. Paws & Claws, Maya"])
    voice = [TRAINED, "Kittens are welcome! Paws & Claws, Maya", "We are closed on Sundays. Paws & Claws, Maya"]
    engine = VoiceEngine(voice, "Let me check and get back to you.")
    _, found = run_generation(engine, [Turn("Them", "Could you groom my kitten?")], None, list(BASE_STOPS), path,
                              GenerationParams(), 3)
    # one fewer rather than more tries (as ml.suggestions does when the model keeps saying the same)
    assert [g.text for g in found] == ["Let me check and get back to you.", "Kittens are welcome! Paws & Claws, Maya"]
    assert not engine.voice


def test_without_fingerprints_or_without_an_adapter_nothing_changes(tmp_path):
    old = adapter_file(tmp_path, [])  # exported before adapters kept them
    engine = VoiceEngine([TRAINED], "never asked")
    _, found = run_generation(engine, [Turn("Them", "Could you groom my kitten?")], None, list(BASE_STOPS), old,
                              GenerationParams(), 1)
    assert [g.text for g in found] == [TRAINED] and recital.learned(old) == frozenset()
    base = VoiceEngine([], TRAINED)
    _, found = run_generation(base, [Turn("Them", "Could you groom my kitten?")], None, list(BASE_STOPS), None,
                              GenerationParams(), 1)
    assert [g.text for g in found] == [TRAINED]


def test_an_adapter_file_deleted_after_it_was_loaded_fails_as_a_missing_adapter(tmp_path):
    """llama.cpp keeps a loaded adapter by path: the file can be deleted while the engine still serves it."""
    path = adapter_file(tmp_path, [TRAINED])
    engine = VoiceEngine([TRAINED], "never asked")
    Path(path).unlink()
    with pytest.raises(RuntimeError, match="missing"):  # the reply job's adapter_unavailable (503), not a crash
        run_generation(engine, [Turn("Them", "Could you groom my kitten?")], None, list(BASE_STOPS), path,
                       GenerationParams(), 1)
