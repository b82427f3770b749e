"""Browsing: order, paging, search, needs-reply, message cursors, isolation."""

import uuid

from tests.api.conftest import batch, message


def seed(device, n_conversations=3):
    for i in range(n_conversations):
        direction = "incoming" if i % 2 == 0 else "outgoing"
        device.sync(batch(chat=f"chat-{i}", participants=[f"+1555000000{i}"], displayName=f"Client {i}",
                          messages=[message(f"c{i}-m0", f"booking question {i}", sent=f"2026-11-0{i + 1}T09:00:00Z",
                                            sender=f"+1555000000{i}"),
                                    message(f"c{i}-m1", f"last words {i}", direction=direction,
                                            sent=f"2026-11-0{i + 1}T10:00:00Z", sender=f"+1555000000{i}")]))


def test_newest_first_with_preview_and_needs_reply(provider):
    seed(provider.pair_device())
    body = provider.get("/api/conversations").json()
    assert body["total"] == 3
    names = [c["displayName"] for c in body["items"]]
    assert names == ["Client 2", "Client 1", "Client 0"]
    first = body["items"][0]
    assert first["lastMessagePreview"] == "last words 2" and first["needsReply"] is True
    assert body["items"][1]["needsReply"] is False
    assert set(first) == {"id", "displayName", "isGroup", "participants", "lastMessageAt", "messageCount",
                          "lastMessagePreview", "needsReply"}


def test_paging_search_and_filter(provider):
    seed(provider.pair_device(), 5)
    page = provider.get("/api/conversations", params={"limit": 2, "offset": 2}).json()
    assert [c["displayName"] for c in page["items"]] == ["Client 2", "Client 1"] and page["total"] == 5
    assert [c["displayName"] for c in provider.get("/api/conversations", params={"q": "client 3"}).json()["items"]] \
        == ["Client 3"]
    # search reaches message text
    found = provider.get("/api/conversations", params={"q": "booking question 4"}).json()["items"]
    assert [c["displayName"] for c in found] == ["Client 4"]
    # LIKE wildcards in the query are literal
    assert provider.get("/api/conversations", params={"q": "%"}).json()["total"] == 0
    needs = provider.get("/api/conversations", params={"needsReply": "true"}).json()
    assert sorted(c["displayName"] for c in needs["items"]) == ["Client 0", "Client 2", "Client 4"]
    assert provider.get("/api/conversations", params={"needsReply": "false"}).json()["total"] == 2


def test_message_pages_with_before_cursor(provider):
    device = provider.pair_device()
    device.sync(batch(messages=[message(f"g{i:03d}", f"m{i}", sent=f"2026-11-01T10:{i // 60:02d}:{i % 60:02d}Z")
                                for i in range(120)]))
    conv_id = provider.get("/api/conversations").json()["items"][0]["id"]
    seen = []
    before = None
    while True:
        params = {"limit": 50, **({"before": before} if before else {})}
        page = provider.get(f"/api/conversations/{conv_id}", params=params).json()
        seen += [m["text"] for m in page["messages"]]
        before = page["nextBefore"]
        if before is None:
            break
    assert seen == [f"m{i}" for i in reversed(range(120))]


def test_bad_cursor_and_unknown_ids(provider):
    seed(provider.pair_device(), 1)
    conv_id = provider.get("/api/conversations").json()["items"][0]["id"]
    bad = provider.get(f"/api/conversations/{conv_id}", params={"before": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"
    assert provider.get(f"/api/conversations/{uuid.uuid4()}").status_code == 404
    assert provider.get("/api/conversations/not-a-uuid").json()["error"] == "validation_error"
    assert provider.get("/api/conversations", params={"limit": 0}).status_code == 422


def test_every_browsing_route_is_isolated_between_providers(make_provider):
    ana, bo = make_provider("Ana"), make_provider("Bo")
    seed(ana.pair_device(), 2)
    assert bo.get("/api/conversations").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    for conv in ana.get("/api/conversations").json()["items"]:
        assert bo.get(f"/api/conversations/{conv['id']}").status_code == 404
    assert bo.get("/api/devices").json() == []
