"""Telegram resends an update whose answer it did not get, possibly while the first
delivery is still being stored: racing copies of the same updates store each once."""
from __future__ import annotations

import json
import random
import threading

from sqlalchemy import func, select

from hub.models import Contact, Conversation, Event, Message
from tests.support.telegram import make_bot_channel, post_update


def update(update_id: int, user_id: int, message_id: int) -> bytes:
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"}
    return json.dumps({"update_id": update_id, "message": {
        "message_id": message_id, "from": user, "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
        "date": 1765100000 + update_id, "text": f"text {update_id}"}}).encode()


def test_racing_copies_of_the_same_updates_store_each_once(app, runtime):
    _, key = make_bot_channel(runtime)
    bodies = [update(1000 + i, 900 + i % 5, 1 + i // 5) for i in range(20)]
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver(seed: int) -> None:
        client = app.test_client()
        order = list(bodies)
        random.Random(seed).shuffle(order)
        for body in order:
            for _ in range(20):  # Telegram retries what was not answered 2xx
                status = post_update(client, key, body).status_code
                if status == 200:
                    break
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=deliver, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == len(statuses) == 120
    with runtime.db.scope() as session:
        count = lambda model, *where: session.scalar(select(func.count()).select_from(model).where(*where))  # noqa: E731
        assert count(Message) == 20 and count(Contact) == 5 and count(Conversation) == 5
        assert count(Event, Event.type == "message.received") == 20
        assert count(Event, Event.type == "conversation.started") == 5
