"""The provider's own past exchanges as examples in the prompt: found by PostgreSQL full-text search,
best first, strictly per provider, never from groups, acknowledgements, late replies or the conversation
being answered; placed before the client's newest messages so a follow-up prompt still begins as the
previous one did."""

from __future__ import annotations

import sqlalchemy as sa

from convassist.db import session_scope
from convassist.models import Device, Message
from convassist.services import examples
from convassist.services.responses import conversation_turns
from ml.prompt import Turn, render
from tests.services.test_domain_rules import make_provider
from tests.services.test_history import chat

PRICE = "A colour and cut is $120, cut alone $45. Cheers, Ana"


def ana_and_mallory(session):
    ana, _ = make_provider(session, "Ana")
    mallory, _ = make_provider(session, "Mallory")
    mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
    mallorys_mac = session.execute(sa.select(Device).where(Device.provider_id == mallory)).scalar_one()
    chat(session, mac, "c-price", [("incoming", "Hi! How much is a colour and cut?", 0, "text"),
                                   ("outgoing", PRICE, 4, "text")])
    chat(session, mac, "c-parking", [("incoming", "Is there parking near the salon?", 0, "text"),
                                     ("outgoing", "Yes, free parking behind the building. Cheers, Ana", 3, "text")])
    chat(session, mac, "c-ack", [("incoming", "How much is the colour again?", 0, "text"),
                                 ("outgoing", "ok", 1, "text")])  # an acknowledgement teaches nothing
    chat(session, mac, "c-late", [("incoming", "What does a colour cost?", 0, "text"),
                                  ("outgoing", "Colour is $999 this week only", 6 * 60, "text")])  # hours later
    chat(session, mac, "c-group", [("incoming", "How much is a colour for the bride?", 0, "text"),
                                   ("outgoing", "For the bride the colour is $300", 2, "text")], group=True)
    chat(session, mallorys_mac, "c-mallory", [("incoming", "How much is a colour and cut?", 0, "text"),
                                              ("outgoing", "Mallory charges $5 for a colour and cut", 2, "text")])
    chat(session, mac, "c-now", [("incoming", "Hello again", 0, "text"),
                                 ("outgoing", "Hi Jo, how are you?", 1, "text"),
                                 ("incoming", "Good thanks.", 2, "text"),
                                 ("incoming", "How much would a colour and cut be?", 3, "text")])
    newest = session.execute(sa.select(Message.id).where(Message.provider_id == ana,
                                                         Message.text.like("How much would%"))).scalar_one()
    return ana, mallory, newest


def test_the_providers_own_most_similar_exchange_comes_first_and_only_theirs(db):
    with session_scope() as session:
        ana, mallory, newest = ana_and_mallory(session)
        turns, conversation_id, shown = conversation_turns(session, ana, newest, 10, examples=3)
        found = examples.examples_for(session, ana, conversation_id, turns[-2:], False, 3)
        mallorys = examples.find_examples(session, mallory, conversation_id, "How much is a colour and cut?", 3)
    assert [e.reply for e in found] == [PRICE]  # the parking answer shares no word with the question
    assert shown == 1
    texts = [t.text for t in turns]
    # the example sits just before the client's newest messages, as a Them/Me exchange
    assert texts == ["Hello again", "Hi Jo, how are you?", "Hi! How much is a colour and cut?", PRICE,
                     "Good thanks.", "How much would a colour and cut be?"]
    assert [t.speaker for t in turns] == ["Them", "Me", "Them", "Me", "Them", "Them"]
    prompt = render(turns)
    for never in ("$999", "$300", "Mallory", "ok\n"):  # late, group, another provider's, acknowledgement
        assert never not in prompt
    assert [e.reply for e in mallorys] == ["Mallory charges $5 for a colour and cut"]  # hers only


def test_examples_can_be_switched_off_and_nothing_matches_without_a_shared_word(db):
    with session_scope() as session:
        ana, _, newest = ana_and_mallory(session)
        plain, _, none = conversation_turns(session, ana, newest, 10, examples=0)
        conversation = session.get(Message, newest).conversation_id
        assert examples.find_examples(session, ana, conversation, "Good morning to you", 3) == []
        # only stop words: the search has nothing to look for
        assert examples.find_examples(session, ana, conversation, "and the of to", 3) == []
    assert [t.text for t in plain] == ["Hello again", "Hi Jo, how are you?", "Good thanks.",
                                       "How much would a colour and cut be?"]
    assert none == 0


def test_search_syntax_in_a_message_is_only_text(db):
    """A client's message is never tsquery syntax: operators and quotes are words or nothing."""
    with session_scope() as session:
        ana, _, newest = ana_and_mallory(session)
        conversation = session.get(Message, newest).conversation_id
        for attack in ("colour & | ! ( :* ' \" \\", "') | ('", "!!!", "colour:* <-> cut", "\x00colour"):
            found = examples.find_examples(session, ana, conversation, attack.replace("\x00", ""), 3)
            assert all(e.reply != "Mallory charges $5 for a colour and cut" for e in found)
        assert [e.reply for e in examples.find_examples(session, ana, conversation, "colour:* <-> cut", 3)] == [PRICE]


def test_a_follow_up_prompt_begins_as_the_previous_one_did_up_to_the_examples():
    """The worker reuses what it read of the previous prompt: examples are placed after the shared part."""
    before = [Turn("Them", "Hello again"), Turn("Me", "Hi Jo"), Turn("Them", "How much is a cut?")]
    after = before + [Turn("Me", "A cut is $45."), Turn("Them", "And parking?")]
    first = examples.with_examples(before, [examples.Example("How much is a cut?", "Cut is $45. Ana")])
    second = examples.with_examples(after, [examples.Example("Parking?", "Free behind the building. Ana")])
    shared = "Them: Hello again\nMe: Hi Jo\n"  # everything before the client's newest messages
    assert render(first).startswith(shared + "Them: How much is a cut?\nMe: Cut is $45. Ana\n")
    # the next prompt holds the conversation as it was (no old examples) and reads on from there
    assert render(second).startswith(shared + "Them: How much is a cut?\nMe: A cut is $45.\nThem: Parking?")
    assert examples.with_examples(before, []) == before
    # the best example goes last, nearest the question
    two = examples.with_examples(before, [examples.Example("best q", "best a"), examples.Example("next q", "next a")])
    assert [t.text for t in two][2:6] == ["next q", "next a", "best q", "best a"]


def test_a_prompts_examples_can_be_taken_out_again_and_nothing_else_is():
    """A used or edited suggestion teaches the voice without its examples in half of the samples: the
    prompt the model read, less exactly the example pairs."""
    one_to_one = [Turn("Them", "Hello again"), Turn("Me", "Hi Jo"), Turn("Them", "How much is a cut?"),
                  Turn("Them", "And a colour?")]
    group = [Turn("Jo", "Me: a cut?"), Turn("Me", "Sure"), Turn("Sam", "Them: and me")]
    answered = [Turn("Them", "Thanks!"), Turn("Me", "See you Friday")]
    found = [examples.Example("How much is a cut?", "Cut is $45. Ana"), examples.Example("Colour?", "$80. Ana")]
    for turns in (one_to_one, group, answered, one_to_one[-1:]):
        for shown in (found[:1], found):
            prompt = render(examples.with_examples(turns, shown))
            assert examples.without_examples(prompt, len(shown)) == render(turns)
        assert examples.without_examples(render(turns), 0) == render(turns)
    # a count that does not fit the prompt (more pairs than lines, or lines that are not pairs) changes nothing
    assert examples.without_examples(render(one_to_one), 5) == render(one_to_one)
    assert examples.without_examples(render(group), 1) == render(group)
    # the same half every time, about half of all keys
    keys = [f"response-{i}" for i in range(400)]
    assert [examples.shows_examples(k) for k in keys] == [examples.shows_examples(k) for k in keys]
    assert 150 < sum(map(examples.shows_examples, keys)) < 250


def test_used_and_edited_suggestions_teach_with_their_examples_in_half_of_the_samples(db):
    from convassist.models import GeneratedResponse
    from tests.services.test_domain_rules import samples, verdict

    turns = [Turn("Them", "Hi! How much would a colour and cut be?")]
    shown = [examples.Example("How much is a colour and cut?", PRICE)]
    prompt = render(examples.with_examples(turns, shown))
    with session_scope() as session:
        ana, message = make_provider(session, "Ana")
        rows = []
        for i in range(24):
            row = GeneratedResponse(provider_id=ana, message_id=message, prompt=prompt, params={"examples": 1},
                                    status="completed", response="It is $120.", confidence=0.5,
                                    suggestions=[{"text": "It is $120.", "confidence": 0.5}])
            session.add(row)
            rows.append(row)
        old = GeneratedResponse(provider_id=ana, message_id=message, prompt=prompt, params={},  # before the count
                                status="completed", response="It is $120.", confidence=0.5,
                                suggestions=[{"text": "It is $120.", "confidence": 0.5}])
        session.add(old)
        session.flush()
        ids = [r.id for r in rows]
        old_id = old.id
    for i, response_id in enumerate(ids):
        verdict(ana, response_id, **({"action": "accept"} if i % 2 else {"action": "edit", "edited_response": "$120!"}))
    verdict(ana, old_id, action="accept")
    by_response = {s.response_id: s.input_context for s in samples(ana)}
    for response_id in ids:
        assert by_response[response_id] == (prompt if examples.shows_examples(str(response_id)) else render(turns))
    assert 0 < sum(by_response[r] == prompt for r in ids) < len(ids)  # both halves are there
    assert by_response[old_id] == prompt  # a response that did not count its examples teaches as it was


def test_a_conversations_examples_are_searched_once_shared_and_kept_only_for_a_while(db, redis_server, settings_env):
    """Every app process reuses a search (Redis, EXAMPLES_TTL): a click on Suggest after the suggestions
    were computed ahead does not pay for it again. Per provider; Redis down, the search still answers."""
    import redis

    new_price = "Colour and cut: $130 from next week. Ana"
    asked = [Turn("Them", "How much would a colour and cut be?")]
    with session_scope() as session:
        ana, mallory, newest = ana_and_mallory(session)
        conversation = session.get(Message, newest).conversation_id
        first = examples.examples_for(session, ana, conversation, asked, False, 3)
        mac = session.execute(sa.select(Device).where(Device.provider_id == ana)).scalar_one()
        chat(session, mac, "c-new", [("incoming", "How much would a colour and cut be?", 0, "text"),
                                     ("outgoing", new_price, 2, "text")])
        # the search sees it, first: the very question, asked before
        found = examples.find_examples(session, ana, conversation, asked[0].text, 3)
        assert [e.reply for e in found] == [new_price, PRICE]
        assert examples.examples_for(session, ana, conversation, asked, False, 3) == first  # the shared answer
        # Mallory asking the same in a conversation with the same id gets hers, never Ana's
        assert [e.reply for e in examples.examples_for(session, mallory, conversation, asked, False, 3)] == [
            "Mallory charges $5 for a colour and cut"]
    client = redis.Redis.from_url(redis_server.url)
    stored = list(client.scan_iter("convassist:examples:*"))
    assert len(stored) == 2 and all(0 < client.ttl(k) <= examples.EXAMPLES_TTL for k in stored)
    assert all(b"Ana" not in k and b"colour" not in k for k in stored)  # no message text in a key's name
    client.delete(*stored)  # as when they expire
    with session_scope() as session:
        assert [e.reply for e in first] == [PRICE]
        again = examples.examples_for(session, ana, conversation, asked, False, 3)
        assert [e.reply for e in again] == [new_price, PRICE]
        settings_env(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
        assert examples.examples_for(session, ana, conversation, asked, False, 3) == again


def test_the_example_most_about_the_question_comes_first(db):
    """Ranked for its length: of past messages sharing the same word, the short one is the most about it."""
    with session_scope() as session:
        groomer, _ = make_provider(session, "Maya")
        mac = session.execute(sa.select(Device).where(Device.provider_id == groomer)).scalar_one()
        for i, (asked, answer) in enumerate([
                ("How much is a full groom for my big lab?", "A full groom is $85 for big dogs. Woof, Maya"),
                ("Do you groom cats?", "Sorry, we only groom dogs. Woof, Maya"),
                ("How long does a full groom take?", "About two hours. Woof, Maya")]):
            chat(session, mac, f"c-{i}", [("incoming", asked, 0, "text"), ("outgoing", answer, 2, "text")])
        here = session.execute(sa.select(Message.conversation_id).where(
            Message.provider_id == groomer, Message.text == "Is Friday at 3 free?")).scalar_one()
        found = examples.find_examples(session, groomer, here, "Could you groom my kitten?", 3)
    assert [e.reply for e in found][0] == "Sorry, we only groom dogs. Woof, Maya"
    assert len(found) == 3  # the others share the word too: the model reads the provider's way of writing


def test_an_exchange_is_found_by_the_words_of_the_providers_reply_too(db):
    """Clients ask in their own words; the provider's answer names the subject: "When should I come back for
    my dog?" shares no word with "How will I know she's ready?" but does with its reply."""
    with session_scope() as session:
        groomer, _ = make_provider(session, "Maya")
        other, _ = make_provider(session, "Mallory")
        mac = session.execute(sa.select(Device).where(Device.provider_id == groomer)).scalar_one()
        theirs = session.execute(sa.select(Device).where(Device.provider_id == other)).scalar_one()
        chat(session, mac, "c-ready", [("incoming", "How will I know she's ready?", 0, "text"),
                                       ("outgoing", "Come back by 5pm, we text you when she's done.", 2, "text")])
        chat(session, mac, "c-nails", [("incoming", "Can I come in for just nails?", 0, "text"),
                                       ("outgoing", "Nail trims are $15, no appointment needed.", 2, "text")])
        chat(session, mac, "c-group", [("incoming", "Who is free Friday?", 0, "text"),
                                       ("outgoing", "Come back to me by 5pm please all", 2, "text")], group=True)
        chat(session, theirs, "c-theirs", [("incoming", "When is pickup?", 0, "text"),
                                           ("outgoing", "Come back at 9pm for your dog, Mallory", 2, "text")])
        chat(session, mac, "c-now", [("incoming", "When should I come back for my dog?", 0, "text")])
        here = session.execute(sa.select(Message.conversation_id).where(
            Message.provider_id == groomer, Message.text.like("When should I come back%"))).scalar_one()
        found = examples.find_examples(session, groomer, here, "When should I come back for my dog?", 3)
    # first: the reply about coming back; the nails exchange only shares "come" in the client's words;
    # never a group's reply nor another provider's
    assert [e.reply for e in found] == ["Come back by 5pm, we text you when she's done.",
                                        "Nail trims are $15, no appointment needed."]
    assert found[0].message == "How will I know she's ready?"


def test_of_the_exchanges_sharing_words_those_closest_in_meaning_come_first(db, monkeypatch):
    """"How much time does grooming take?" shares "much" and "groom" with the puppy's price, and no word but
    "groom" with "How many hours is a groom?": the words alone show the puppy's price; ranked again by meaning
    too (services.meaning, reciprocal rank fusion), the other exchange about how long it takes is shown instead."""
    hours = "A full groom takes about 2 hours. Woof, Maya"
    with session_scope() as session:
        groomer, _ = make_provider(session, "Maya")
        mac = session.execute(sa.select(Device).where(Device.provider_id == groomer)).scalar_one()
        for i, (asked, answer) in enumerate([
                ("How long does a full groom take?", hours),
                ("My puppy needs her first groom, how much?", "A puppy's first groom is $35. Woof, Maya"),
                ("How much is a full groom?", "A full groom is $65 for small dogs. Woof, Maya"),
                ("How many hours is a groom?", "Hey hey! " + hours),
                ("Do you groom cats?", "Sorry, we only groom dogs. Woof, Maya")]):
            chat(session, mac, f"c-{i}", [("incoming", asked, 0, "text"), ("outgoing", answer, 2, "text")])
        chat(session, mac, "c-now", [("incoming", "How much time does grooming take?", 0, "text")])
        here = session.execute(sa.select(Message.conversation_id).where(
            Message.provider_id == groomer, Message.text.like("How much time%"))).scalar_one()
        found = examples.find_examples(session, groomer, here, "How much time does grooming take?", 3)
        with monkeypatch.context() as words_only:
            words_only.setattr(examples, "by_meaning_too", lambda query, found: found)
            by_words = examples.find_examples(session, groomer, here, "How much time does grooming take?", 3)
    puppy = "A puppy's first groom is $35. Woof, Maya"
    # by words: the puppy's price third, the other answer about time fourth (it shares only "groom")
    assert [e.reply for e in by_words] == [hours, "A full groom is $65 for small dogs. Woof, Maya", puppy]
    # by words and meaning: the other answer about time takes the puppy's place
    assert [e.reply for e in found] == [hours, "A full groom is $65 for small dogs. Woof, Maya", "Hey hey! " + hours]


def test_meaning_ranks_again_and_a_tie_keeps_the_order_by_words():
    """The fusion on its own, with the real bundled model: a candidate close in meaning moves up; one first by
    words and second by meaning ties with one second by words and first by meaning, and keeps its place;
    nothing is added or lost."""
    mats = examples.Example("My dog is really matted, can you fix it?", "Matted coats need a shave-down, $20.")
    parking = examples.Example("Where do I park?", "Free parking behind the shop.")
    pay = examples.Example("Can I pay by card?", "We take cards and cash.")
    hours = examples.Example("When are you open?", "Tuesday to Saturday.")
    question = "Can you brush out bad mats?"
    close = examples.meaning.closeness(question, [(e.message, e.reply) for e in (mats, parking, pay, hours)])
    assert close[0] > max(close[1:]) and close[1] > max(close[2:])  # by meaning: mats, then parking
    assert examples.by_meaning_too(question, [parking, pay, mats, hours]) == [parking, mats, pay, hours]
    assert examples.by_meaning_too(question, [parking, mats]) == [parking, mats]  # a tie
    assert examples.by_meaning_too(question, [mats]) == [mats]
    assert examples.by_meaning_too(question, []) == []
