"""`hub demo --channels whatsapp,telegram,instagram`: each chosen channel's emulator is
started and configured as a channel of the hub (a WhatsApp number, a Telegram bot with
its webhook set, an Instagram account subscribed), and its emulated customers' messages
reach the hub as conversations on that channel."""
from __future__ import annotations

import contextlib
import random
import socket

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hub.app import create_app
from hub.cli import cli
from hub.demo import CHANNELS
from hub.models import Channel, Contact, Conversation
from hub.platform.runtime import Runtime
from tests.conftest import make_config
from tests.support.browser import LiveHub


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_demo_channel_is_configured_and_its_customers_reach_the_hub(database_url, tmp_path):
    port = _free_port()
    runtime = Runtime.from_config(make_config(database_url, tmp_path, base_url=f"http://127.0.0.1:{port}"))
    app = create_app(runtime=runtime)
    rng = random.Random(7)
    try:
        with LiveHub(app, port=port), contextlib.ExitStack() as stack:
            demos = [stack.enter_context(CHANNELS[kind](runtime, f"http://127.0.0.1:{port}")) for kind in CHANNELS]
            assert [d.kind for d in demos] == ["whatsapp", "telegram", "instagram"]
            for demo in demos:
                assert demo.emulator_url.startswith("http://127.0.0.1:")
                for _ in range(4):
                    demo.chatter.step(rng)
            from hub.channels.instagram.profiles import ProfileFetcher

            assert ProfileFetcher(runtime).run_once() >= 1  # the Instagram customers' names, from the emulator
        with runtime.db.scope() as session:
            kinds = dict(session.execute(select(Channel.kind, Channel.health)).all())
            assert set(kinds) == {"whatsapp", "telegram", "instagram"}
            assert kinds["telegram"] == "ok"  # setWebhook accepted
            per_kind = dict(session.execute(
                select(Channel.kind, func.count(Conversation.id)).join(Conversation, Conversation.channel_id
                                                                       == Channel.id).group_by(Channel.kind)).all())
            assert set(per_kind) == {"whatsapp", "telegram", "instagram"} and min(per_kind.values()) >= 1
            names = set(session.scalars(select(Contact.name).where(Contact.user_id.like("ig:%"))))
            assert names and "" not in names
    finally:
        runtime.db.dispose()


def test_an_unknown_demo_channel_is_refused_by_name():
    result = CliRunner().invoke(cli, ["demo", "--channels", "whatsapp,viber"])
    assert result.exit_code == 2
    assert "--channels" in result.output and "viber" in result.output
