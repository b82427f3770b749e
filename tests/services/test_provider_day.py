"""Service rules behind the provider's day (issue 13), without HTTP or a browser: live change messages
go out after a commit and never after a rollback, a verdict names the suggestion it used, asking again
after a verdict brings other replies, devices say what is wrong, garbage samples never train, and
`?next=` after login never leaves the site."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from convassist import keys
from convassist.db import session_scope
from convassist.models import Device, TrainingSample, utcnow
from convassist.services import devices, live, responses, training
from convassist.services.errors import DomainError
from convassist.state.auth import safe_next
from tests.services.test_domain_rules import completed_response, make_provider, verdict


@pytest.fixture
def ana(db):
    with session_scope() as session:
        return make_provider(session, "Ana")


def listen(provider_id):
    client = redis.Redis.from_url(__import__("os").environ["REDIS_URL"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.live_channel(str(provider_id)))
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    return pubsub


def received(pubsub, wait=0.5) -> list[list[str]]:
    found = []
    while (message := pubsub.get_message(timeout=wait)) is not None:
        found.append(json.loads(message["data"]))
    return found


def test_a_change_is_published_after_its_commit_and_never_after_a_rollback(ana):
    provider_id, _ = ana
    pubsub = listen(provider_id)
    with session_scope() as session:
        training.add_sample(session, provider_id, training.SampleInput(input_context="Them: hi\nMe:",
                                                                       expected_output="Hello!"))
        assert received(pubsub, 0.2) == []  # not before the commit: a page would not find the row yet
    assert received(pubsub) == [["samples"]]

    with pytest.raises(RuntimeError), session_scope() as session:
        training.add_sample(session, provider_id, training.SampleInput(input_context="Them: hi\nMe:",
                                                                       expected_output="Rolled back"))
        raise RuntimeError("the request failed after the change")
    assert received(pubsub) == []  # nothing happened, nothing to tell


def test_follow_hears_only_its_own_providers_changes(db):
    with session_scope() as session:
        ana, _ = make_provider(session, "Ana")
        bo, _ = make_provider(session, "Bo")

    async def first_change():
        async with aclosing(live.follow(ana)) as changes:
            heard = []
            async for topics in changes:
                if len(heard) == 0:  # subscribed: now change both providers' data
                    await asyncio.to_thread(live.publish, bo, {"messages"})
                    await asyncio.to_thread(live.publish, ana, {"training"})
                heard.append(topics)
                if topics:
                    return heard

    heard = asyncio.run(asyncio.wait_for(first_change(), 15))
    assert heard[-1] == frozenset({"training"})  # Bo's change never reaches Ana's pages


def test_a_verdict_names_the_suggestion_it_used(ana):
    provider_id, message_id = ana
    with session_scope() as session:
        response_id = completed_response(session, provider_id, message_id)
        row = session.get(responses.GeneratedResponse, response_id)
        row.suggestions = [{"text": "Yes, see you Friday!", "confidence": 0.42},
                           {"text": "Friday works!", "confidence": 0.2}]
    for bad in (2, 3, -1, 10**9):
        with pytest.raises((DomainError, ValueError)):
            verdict(provider_id, response_id, action="accept", suggestion_index=bad)
    view = responses.response_view(verdict(provider_id, response_id, action="accept", suggestion_index=1))
    assert view.status == "accepted" and view.chosen_suggestion == 1
    with session_scope() as session:
        sample = session.execute(sa.select(TrainingSample).where(TrainingSample.provider_id == provider_id)).scalar_one()
    assert sample.expected_output == "Friday works!" and sample.quality == pytest.approx(0.2)


def test_garbage_replies_never_train_and_do_not_count_towards_the_minimum(ana):
    provider_id, _ = ana
    with session_scope() as session:
        for i in range(training.MIN_SAMPLES - 1):
            training.add_sample(session, provider_id, training.SampleInput(
                input_context=f"Them: question {i}\nMe:", expected_output=f"A fine answer number {i}."))
        for junk in ("ok ok ok ok ok", "!!!!!!!!!!!!", "the the the the the the"):
            training.add_sample(session, provider_id, training.SampleInput(input_context="Them: hi\nMe:",
                                                                           expected_output=junk))
        assert training.usable_count(session, provider_id) == training.MIN_SAMPLES - 1
        with pytest.raises(DomainError) as refused:
            training.create_job(session, provider_id, training.TrainingParams(
                base_model="smollm2-135m-instruct"))
    assert refused.value.code == "not_enough_samples"
    assert training.sample_problem("Yes, 3pm works. Cheers, Ana") is None


def test_a_device_says_what_is_wrong_with_it(ana):
    provider_id, _ = ana
    with session_scope() as session:
        device = session.execute(sa.select(Device).where(Device.provider_id == provider_id)).scalar_one()
        device.last_sync_at = utcnow()
        assert devices.device_problem(device) is None
        assert "No sync for 20 minutes" in devices.device_problem(device, utcnow() + timedelta(minutes=20))
        assert "No sync for 3 hours" in devices.device_problem(device, utcnow() + timedelta(hours=3, minutes=1))
        device.active = False
        assert devices.device_problem(device).startswith("Deactivated")


@pytest.mark.parametrize("hostile", ["//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:x",
                                     "http:/evil.example", "/login?next=//evil.example", "\n/x", "/x\r\nSet-Cookie:a",
                                     "", None, 7, ["/devices"], "/" + "a" * 3000])
def test_next_after_login_never_leaves_the_site(hostile):
    assert safe_next(hostile) == "/"


def test_next_after_login_returns_to_a_page_of_this_site():
    assert safe_next("/training") == "/training"
    assert safe_next("/conversations/abc?suggest=1") == "/conversations/abc?suggest=1"


def job_with_samples(session, provider_id) -> training.TrainingJob:
    """A queued training job of a provider with just enough samples."""
    for i in range(training.MIN_SAMPLES):
        training.add_sample(session, provider_id, training.SampleInput(
            input_context=f"Them: question {i}\nMe:", expected_output=f"A fine answer number {i}."))
    return training.create_job(session, provider_id, training.TrainingParams(base_model="smollm2-135m-instruct"))


def test_training_refuses_with_the_numbers_a_model_this_machine_cannot_train(ana, monkeypatch):
    from ml.registry import REGISTRY, machine_memory_gb, training_memory_problem

    assert training_memory_problem("smollm2-135m-instruct", machine_memory_gb()) is None  # this machine: fine
    assert "needs about 58.6 GB" in training_memory_problem("mistral-7b", 24.0)
    provider_id, _ = ana
    with session_scope() as session:
        job = job_with_samples(session, provider_id)
    monkeypatch.setattr(training, "machine_memory_gb", lambda: 1.0)  # a machine too small for it
    assert training.begin_training(str(job.id)) is None
    with session_scope() as session:
        failed = training.get_job(session, provider_id, job.id)
    spec = REGISTRY["smollm2-135m-instruct"]
    assert failed.status == "failed" and f"needs about {spec.train_gb} GB" in failed.error and "has 1.0 GB" in failed.error


def test_samples_deleted_after_the_job_was_queued_fail_it_with_the_numbers(ana):
    """A job is queued with enough samples; the provider deletes some before it starts: it fails saying how
    many are left (before, the trainer divided by zero on none)."""
    provider_id, _ = ana
    with session_scope() as session:
        job = job_with_samples(session, provider_id)
        doomed = training.list_samples(session, provider_id, limit=3)[0]
    with session_scope() as session:
        for sample in doomed:
            training.delete_sample(session, provider_id, sample.id)
    assert training.begin_training(str(job.id)) is None
    with session_scope() as session:
        failed = training.get_job(session, provider_id, job.id)
    assert failed.status == "failed" and f"at least {training.MIN_SAMPLES} usable samples; 5 are left" in failed.error


def test_a_new_adapter_switches_itself_on_only_when_it_beats_what_serves(ana, settings_env):
    """With the setting on: better than the base model and than the adapter serving → on; about the
    same or worse → left for the provider to decide."""
    from ml.judge import Judgement
    from ml.train import TrainResult

    settings_env(ML_SERVICE_TRAINING_AUTO_ACTIVATE="true")
    provider_id, _ = ana
    with session_scope() as session:
        for i in range(training.MIN_SAMPLES):
            training.add_sample(session, provider_id, training.SampleInput(
                input_context=f"Them: question {i}\nMe:", expected_output=f"A fine answer number {i}."))

    def finished(base: float, voice: float, invented: tuple[int, int] = (0, 0)) -> str:
        with session_scope() as session:
            job = training.create_job(session, provider_id, training.TrainingParams(base_model="smollm2-135m-instruct"))
            job_id = str(job.id)
        with session_scope() as session:
            session.get(training.TrainingJob, job.id).status = "training"
        training.complete_job(job_id, TrainResult(), Judgement(base, voice, 5, base_invented=invented[0],
                                                                voice_invented=invented[1]))
        with session_scope() as session:
            return session.get(training.TrainingJob, job.id).is_active

    assert finished(9.0, 8.5) is False  # worse than the base model: never
    assert finished(9.0, 25.0) is True  # better, nothing serving: on
    assert finished(9.0, 25.5) is False  # about the same as what serves: left alone
    assert finished(9.0, 30.0) is True  # clearly better than what serves: replaces it
    assert finished(9.0, 45.0, invented=(1, 2)) is False  # closer, but invents more numbers than the base


def test_a_judged_job_tells_the_provider_about_numbers_nobody_gave(ana):
    """The judgement's invented-number counts are stored with the job and said in the verdict sentence."""
    from convassist.state.training import _verdict_words
    from ml.judge import Judgement
    from ml.train import TrainResult

    provider_id, _ = ana
    with session_scope() as session:
        job = job_with_samples(session, provider_id)
        job.status = "training"
    training.complete_job(str(job.id), TrainResult(), Judgement(9.0, 25.0, 5, base_invented=3, voice_invented=1))
    with session_scope() as session:
        view = training.job_view(training.get_job(session, provider_id, job.id)).judgement
    assert (view.base_invented, view.voice_invented) == (3, 1)
    assert "made up 1 number (times, prices)" in _verdict_words(view) and "(the base model: 3)" in _verdict_words(view)
    assert _verdict_words(view.model_copy(update={"voice_invented": 0})).endswith(
        "It made up no times or prices; the base model made up 3 numbers.")
    assert "made up" not in _verdict_words(view.model_copy(update={"base_invented": 0, "voice_invented": 0}))
    assert "sign-off" not in _verdict_words(view)  # this provider's replies share none
    # the score is of replies the judged voice never saw; a refit learned them afterwards, and says so
    assert "on 5 replies held back to test it)" in _verdict_words(view)
    assert "on 5 replies held back to test it, then learned too)" in _verdict_words(view, refit=True)


def test_a_judged_job_tells_the_provider_how_many_replies_end_in_their_sign_off(ana):
    from convassist.state.training import _verdict_words
    from ml.judge import Judgement
    from ml.train import TrainResult

    provider_id, _ = ana
    with session_scope() as session:
        job = job_with_samples(session, provider_id)
        job.status = "training"
    training.complete_job(str(job.id), TrainResult(), Judgement(9.0, 25.0, 5, sign_off="Woof, Maya 🐾",
                                                                base_styled=0, voice_styled=4))
    with session_scope() as session:
        view = training.job_view(training.get_job(session, provider_id, job.id)).judgement
    assert (view.sign_off, view.base_styled, view.voice_styled) == ("Woof, Maya 🐾", 0, 4)
    assert "Your sign-off “Woof, Maya 🐾” ends 4 of its 5 replies (the base model's: 0)." in _verdict_words(view)


def test_samples_are_capped_and_a_job_trains_on_the_newest(ana, monkeypatch):
    """Samples added by hand without end made one job hold the only trainer for hours (steps grow with the
    samples) and filled the database: a provider keeps at most MAX_SAMPLES (one more is refused, 409), and a job
    trains on the newest MAX_TRAINED_SAMPLES usable ones, oldest of them first."""
    provider_id, _ = ana
    monkeypatch.setattr(training, "MAX_SAMPLES", training.MIN_SAMPLES + 2)
    monkeypatch.setattr(training, "MAX_TRAINED_SAMPLES", training.MIN_SAMPLES)
    with session_scope() as session:
        job = job_with_samples(session, provider_id)
        for i in (100, 101):
            training.add_sample(session, provider_id, training.SampleInput(
                input_context=f"Them: question {i}\nMe:", expected_output=f"A fine answer number {i}."))
        with pytest.raises(DomainError) as refused:
            training.add_sample(session, provider_id, training.SampleInput(
                input_context="Them: one more\nMe:", expected_output="One answer too many."))
        assert refused.value.code == "too_many_samples" and refused.value.status == 409
        for i in range(training.MIN_SAMPLES):  # the first ones written an hour ago, a minute apart
            session.execute(sa.update(TrainingSample).where(
                TrainingSample.provider_id == provider_id,
                TrainingSample.expected_output == f"A fine answer number {i}.",
            ).values(created_at=utcnow() - timedelta(hours=1, minutes=10 - i)))
    spec = training.begin_training(str(job.id))
    assert [s.reply for s in spec.samples] == [f"A fine answer number {i}." for i in (2, 3, 4, 5, 6, 7, 100, 101)]
