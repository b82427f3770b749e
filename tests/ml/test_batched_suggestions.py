"""Three suggestions for little more than one: the prompt is read once and the replies decode together
as sequences of one batch (LlamaEngine.generate_many), on the real model. What each reply says, how the
first streams and where replies stop are those of one-at-a-time generation."""

from pathlib import Path

import pytest

from ml import garbage
from ml.engine import LlamaEngine
from ml.params import GenerationParams
from ml.prompt import BASE_STOPS, Turn, render
from ml.suggestions import generate_suggestions
from tests.fixtures.voice_samples import QUESTIONS
from tests.ml.test_conversation_memory import chat, engine

GREEDY = GenerationParams(max_tokens=40)


def sampled(seed: int) -> GenerationParams:
    return GenerationParams(max_tokens=40, temperature=0.9, seed=seed)


def prompts() -> list[str]:
    """Conversations of different shapes and lengths."""
    salon = [Turn("Them" if i % 2 == 0 else "Me", text) for q, a in QUESTIONS[:6] for i, text in enumerate((q, a))]
    return [render(salon[:1]), render(salon[:7]), render(salon[:11]), render(chat(9, "piano")),
            render([Turn("Them", "Can I move my 3pm to 4? Also how much is a gel refill")])]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> LlamaEngine:
    return engine(tmp_path_factory.mktemp("batched"))


def test_a_greedy_reply_made_in_a_batch_is_the_one_made_alone(model):
    for prompt in prompts():
        model._seqs.clear()  # cold both ways
        alone = model.generate(prompt, GREEDY, BASE_STOPS)
        model._seqs.clear()
        first, *others = model.generate_many(prompt, [GREEDY, sampled(101), sampled(102)], BASE_STOPS)
        assert first.text == alone.text and abs(first.confidence - alone.confidence) < 0.01, (first, alone)
        assert first.prompt_evaluated == alone.prompt_evaluated and [o.prompt_evaluated for o in others] == [0, 0]
        for reply in (first, *others):
            assert reply.text and not any(stop in reply.text for stop in ("Them:", "Me:", "\n\n")), reply
            assert 0 < reply.confidence <= 1 and reply.tokens <= 40


def test_sampled_replies_follow_their_seeds_and_the_first_streams(model):
    prompt = prompts()[2]
    shown: list[str] = []
    once = model.generate_many(prompt, [GREEDY, sampled(7), sampled(8)], BASE_STOPS, on_text=shown.append)
    again = model.generate_many(prompt, [GREEDY, sampled(7), sampled(8)], BASE_STOPS)
    assert [g.text for g in once] == [g.text for g in again]  # a seed per sequence: the same set again
    other = model.generate_many(prompt, [GREEDY, sampled(1007), sampled(1008)], BASE_STOPS)
    assert [g.text for g in other[1:]] != [g.text for g in once[1:]]
    # the stream is the first reply growing, never a piece of a stop sequence, never another sequence's
    assert shown and shown[-1].strip() == once[0].text
    assert all(once[0].text.startswith(s.strip()) for s in shown if s.strip())


def test_a_follow_up_batch_reads_only_the_new_messages_and_says_the_same(model):
    turns = chat(15, "tax")
    model.generate_many(render(turns[:11]), [GREEDY, sampled(3)], BASE_STOPS, session="ana:c9")
    model.generate(render(chat(9, "garden")), GREEDY, BASE_STOPS, session="bo:c1")  # another conversation between
    follow = model.generate_many(render(turns[:13]), [GREEDY, sampled(3)], BASE_STOPS, session="ana:c9")
    assert follow[0].prompt_evaluated <= follow[0].prompt_tokens // 3, follow[0]
    model._seqs.clear()
    assert follow[0].text == model.generate(render(turns[:13]), GREEDY, BASE_STOPS).text


def test_three_suggestions_through_the_batch_are_different_and_the_first_is_greedy(model):
    for prompt in prompts()[:3]:
        made = generate_suggestions(model, prompt, list(BASE_STOPS), GREEDY, 3)
        texts = [g.text for g in made]
        assert 1 <= len(made) <= 3 and len(set(texts)) == len(texts)
        model._seqs.clear()
        assert texts[0] == model.generate(prompt, GREEDY, BASE_STOPS).text


def test_a_prompt_that_does_not_fit_is_refused_before_any_work(model, tmp_path: Path):
    long = render([Turn("Them", "word " * 2100)])
    with pytest.raises(ValueError, match="does not fit"):
        model.generate_many(long, [GREEDY, sampled(1)], BASE_STOPS)
    assert model.generate(prompts()[0], GREEDY, BASE_STOPS).text  # and the engine still serves


def test_one_sequence_at_a_time_gives_the_same_replies(model, tmp_path: Path):
    """ML_SERVICE_PARALLEL_REPLIES=1 (less memory for a big model): the replies come one after another,
    and they are the ones decoded together, sampled ones included (each sequence computes alone)."""
    from ml.quantize import serving_copy
    from ml.registry import resolve_model

    resolved = serving_copy(resolve_model("smollm2-135m-instruct", None, tmp_path), tmp_path / "converted")
    single = LlamaEngine.load(resolved, context_size=2048, gpu_layers=0, threads=2, sequences=1)
    for prompt in prompts()[1:3]:
        variants = [GREEDY, sampled(11), sampled(12)]
        apart = single.generate_many(prompt, variants, BASE_STOPS)
        model._seqs.clear()
        together = model.generate_many(prompt, variants, BASE_STOPS)
        assert [g.text for g in apart] == [g.text for g in together]
        model._seqs.clear()  # the rule for distinct starts holds across rounds of one sequence too
        assert [g.text for g in single.generate_many(prompt, variants, BASE_STOPS, distinct_starts=True)] == \
            [g.text for g in model.generate_many(prompt, variants, BASE_STOPS, distinct_starts=True)]
        assert apart[1].prompt_evaluated == 1  # the second read only re-reads the last token for its logits


def uniform_prompt() -> str:
    """A conversation where the model begins every reply the same way, sampled or not."""
    turns = []
    for day in range(6):
        turns += [Turn("Them", f"Could I book a colour and cut for {day % 5 + 1} pm on day {day}?"),
                  Turn("Me", f"Of course! Day {day} at {day % 5 + 1} pm is yours, see you then.")]
    return render(turns + [Turn("Them", "Could I book a colour and cut for 2 pm on day 7?")])


def test_distinct_starts_give_each_reply_a_first_token_of_its_own(model):
    """Three sampled replies to a uniform conversation all begin with the greedy one's token; asked for
    distinct starts, each begins with a token none before it did, and the first reply is untouched."""
    one_token = [GenerationParams(max_tokens=1)] + [GenerationParams(max_tokens=1, temperature=0.9, seed=s)
                                                   for s in (21, 22)]
    prompt = uniform_prompt()
    same = [g.text for g in model.generate_many(prompt, one_token, BASE_STOPS)]
    assert len(set(same)) == 1, same  # what the rule is for
    starts = [g.text for g in model.generate_many(prompt, one_token, BASE_STOPS, distinct_starts=True)]
    assert starts[0] == same[0] and len(set(starts)) == 3, starts
    full = [GREEDY, sampled(21), sampled(22)]
    alone = model.generate(prompt, GREEDY, BASE_STOPS)
    replies = model.generate_many(prompt, full, BASE_STOPS, distinct_starts=True)
    assert replies[0].text == alone.text and abs(replies[0].confidence - alone.confidence) < 0.01
    assert [r.text.split()[0] for r in replies[1:]] != [alone.text.split()[0]] * 2


def test_suggestions_ask_for_distinct_starts(model):
    """Where sampled replies repeat the greedy one word for word, suggestions still offer another
    answer (each begins differently; near-duplicates are still dropped)."""
    made = generate_suggestions(model, uniform_prompt(), list(BASE_STOPS), GREEDY, 3)
    first_words = [g.text.split()[0] for g in made]
    assert len(made) >= 2 and len(set(first_words)) == len(first_words), made


def test_a_greedy_reply_that_goes_round_in_a_loop_is_made_again_and_says_something(model):
    """The base model answers some one-line questions with a loop ("No, no, no, no, …"); the suggestion
    is then made again, still greedy, with llama.cpp's repetition penalty on the reply's own tokens."""
    looped = 0
    for question in ("Can you do my cat too?", "Is cash ok?", "How long does a balayage take?"):
        prompt = render([Turn("Them", question)])
        alone = model.generate(prompt, GREEDY, BASE_STOPS)
        first = generate_suggestions(model, prompt, list(BASE_STOPS), GREEDY, 1)[0]
        looped += garbage.problem(alone.text) is not None
        assert garbage.problem(first.text) is None, (question, alone.text, first.text)
        assert first.text == alone.text or garbage.problem(alone.text)  # a reply that was fine is untouched
    assert looped >= 2  # the model's own habit on these questions: without the retry this test fails
