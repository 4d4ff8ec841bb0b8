"""`hub demo`: the whole hub on one machine, with emulated channels and an emulated CRM.

Nothing leaves the machine: a fresh SQLite database in <data_dir>/demo, the emulators
of the channels chosen (`--channels whatsapp,telegram,instagram`: the WhatsApp Cloud
API with one number and two templates, a Telegram bot, an Instagram account), each
configured as a channel of the hub, a CRM emulator (any installed connector with a
benchkit), and emulated customers who write every few seconds on one channel or
another, some of them from a Click-to-WhatsApp ad. Operators log in, answer, and watch the CRM fill up;
with the chat mode (the default) the CRM's emulator also shows each conversation as a chat
on a page of its own (amoCRM chats, Bitrix24 Open Lines, HubSpot inbox threads) where a
manager answers, and the answer reaches the customer through the hub.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from hub.platform.config import Config
from hub.platform.db import utcnow

log = logging.getLogger(__name__)

PNID, WABA, DISPLAY = "2200000000000002", "1100000000000001", "15550001111"
TEMPLATES = [
    ("order_update", "UTILITY", [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}]),
    ("spring_sale", "MARKETING", [{"type": "BODY", "text": "Hello {{1}}! Spring sale: 20% off until Sunday."},
                                  {"type": "FOOTER", "text": "Reply STOP to opt out"}]),
]
QUESTIONS = ["Hi! Is the blue sofa still available?", "How long does delivery take to Berlin?",
             "Can I pay in instalments?", "Where is my order?", "Do you have this in size M?",
             "Thanks, that helps!", "What are your opening hours?"]
NAMES = ["Ana Souza", "Jonas Weber", "Olga Ivanova", "Marco Rossi", "Aisha Khan", "Lena Fischer", "Ivan Petrov"]


def demo_config(config: Config) -> Config:
    data_dir = Path(config.data_dir) / "demo"
    # The CRM emulators send managers' replies to the hub: its own address, as served here.
    host = "127.0.0.1" if config.web.host in ("0.0.0.0", "::", "") else config.web.host
    return config.replace(database_url=f"sqlite:///{data_dir / 'hub.db'}", data_dir=str(data_dir),
                          worker__poll_seconds=0.2, base_url=f"http://{host}:{config.web.port}")


@dataclass
class CrmDemo:
    """An emulated CRM for the demo: the connector's settings and, in chat mode, how its
    emulator is told where the hub listens and which pages show its chats."""

    kind: str
    settings: dict[str, Any]
    chat_pages: Callable[[str], list[tuple[str, str]]]  # the connector's hook URL -> (title, url)


@contextlib.contextmanager
def crm_emulator(kind: str | None, *, chat: bool = True) -> Iterator[CrmDemo | None]:
    """The CRM's emulator; with `chat`, in both modes (timeline and the chat inside the
    CRM: amoCRM chats, Bitrix24 Open Lines, HubSpot inbox) where its benchkit has one."""
    if not kind:
        yield None
        return
    kit = importlib.import_module(f"connectors.{kind}.benchkit")
    if not (chat and hasattr(kit, "start_chat_emulator")):
        with kit.start_emulator() as emulator:
            yield CrmDemo(kit.KIND, kit.connector_settings(emulator.base_url), lambda hook_url: [])
        return
    with kit.start_chat_emulator() as handle:
        yield CrmDemo(kit.KIND, {**kit.chat_settings(handle), "mode": "both"},
                      lambda hook_url: kit.chat_demo(handle, hook_url))


def connect_crm(runtime: Any, crm: CrmDemo, *, now: datetime) -> tuple[int, list[tuple[str, str]], Any]:
    """The demo's CRM connector: created, its emulator wired to the hub's hook, and Test
    connection pressed (which registers the chat channel, the open line connector or the
    custom channel). -> (connector id, chat pages, the check's result)."""
    from hub.crm.check import run_check
    from hub.crm.store import create_connector

    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind=crm.kind, name=f"Demo {crm.kind}",
                                  settings=crm.settings, now=now)
        cid, key = record.id, record.webhook_key
    pages = crm.chat_pages(f"{runtime.config.base_url.rstrip('/')}/webhooks/connectors/{key}")
    return cid, pages, run_check(runtime, cid, now=now)


class Chatter:
    """Emulated customers of one channel: new ones now and then, regulars writing again."""

    def __init__(self, new: Callable[[int, random.Random], Any], again: Callable[[Any, random.Random], None],
                 flush: Callable[[], Any]):
        self.new, self.again, self.flush, self.people = new, again, flush, []

    def step(self, rng: random.Random) -> None:
        if not self.people or (len(self.people) < len(NAMES) and rng.random() < 0.4):
            self.people.append(self.new(len(self.people), rng))
        else:
            self.again(rng.choice(self.people), rng)
        self.flush()


def customers(chatters: list[Chatter], stop: threading.Event, every: float, rng: random.Random) -> None:
    """Every `every` seconds a customer of one of the demo's channels writes."""
    while not stop.is_set():
        try:
            rng.choice(chatters).step(rng)
        except Exception:  # the hub may be restarting; the emulators keep what failed
            log.exception("the emulated customers could not reach the hub")
        stop.wait(every)


@dataclass
class ChannelDemo:
    kind: str
    emulator_url: str
    chatter: Chatter
    note: str = ""


@contextlib.contextmanager
def whatsapp_demo(runtime: Any, hub_url: str) -> Iterator[ChannelDemo]:
    """A WhatsApp number with two templates, some customers coming from an ad."""
    from hub.channels.whatsapp.channels import create_channel
    from hub.channels.whatsapp.emulator import WhatsAppEmulator
    from hub.channels.whatsapp.templates.sync import sync_channel

    app_secret, token = secrets.token_hex(16), "EAAG" + secrets.token_hex(12)
    emu = WhatsAppEmulator()
    with emu.serve() as server:
        now = utcnow()
        with runtime.db.scope() as session:
            channel = create_channel(session, runtime.vault, {
                "name": "Demo shop", "phone_number_id": PNID, "waba_id": WABA, "display_number": "+" + DISPLAY,
                "access_token": token, "app_secret": app_secret, "api_base_url": server.base_url}, now=now)
            channel_id, key = channel.id, channel.key
        number = emu.add_number(phone_number_id=PNID, waba_id=WABA, display_phone_number=DISPLAY, token=token,
                                app_secret=app_secret, webhook_url=f"{hub_url}/webhooks/whatsapp/{key}")
        for name, category, components in TEMPLATES:
            emu.add_template(WABA, name=name, language="en", category=category, components=components)
        sync_channel(runtime, channel_id, now=utcnow())

        def new(i: int, rng: random.Random) -> Any:
            person = emu.customer(number, f"4915{rng.randrange(10**7, 10**8)}", name=NAMES[i])
            if rng.random() < 0.5:
                person.send_from_ad("Hi, I saw your ad. Tell me more?", headline="Spring collection")
            else:
                person.send_text(QUESTIONS[0])
            return person

        yield ChannelDemo("whatsapp", server.base_url,
                          Chatter(new, lambda person, rng: person.send_text(rng.choice(QUESTIONS)), emu.flush),
                          f"number +{DISPLAY}")


@contextlib.contextmanager
def telegram_demo(runtime: Any, hub_url: str) -> Iterator[ChannelDemo]:
    """A Telegram bot (getMe and setWebhook against the emulator); some customers open
    it with /start, one shares their phone now and then."""
    from hub.channels.telegram.channels import create_telegram_channel
    from hub.channels.telegram.emulator import TelegramEmulator

    emu = TelegramEmulator()
    bot = emu.add_bot("demo_shop_bot", "Demo shop")
    with emu.serve() as base:
        registered = create_telegram_channel(runtime, {"name": "Demo shop bot", "bot_token": bot.token,
                                                       "api_base_url": base}, now=utcnow())
        if registered.webhook_error:
            log.warning("demo: the Telegram bot's webhook: %s", registered.webhook_error)

        def new(i: int, rng: random.Random) -> Any:
            first, _, last = NAMES[i].partition(" ")
            user = emu.user(bot, 7_000_000 + rng.randrange(10**6), first, last, username=first.lower())
            user.send_text("/start" if rng.random() < 0.5 else QUESTIONS[0])
            return user

        def again(user: Any, rng: random.Random) -> None:
            if rng.random() < 0.1:
                user.share_contact(f"+4915{rng.randrange(10**7, 10**8)}")
            else:
                user.send_text(rng.choice(QUESTIONS))

        yield ChannelDemo("telegram", base, Chatter(new, again, emu.flush), f"bot @{bot.username}")


@contextlib.contextmanager
def instagram_demo(runtime: Any, hub_url: str) -> Iterator[ChannelDemo]:
    """An Instagram account whose customers have profiles (names come from the User
    Profile API), some answered from the Instagram app (echoes)."""
    from hub.channels.instagram.channels import create_instagram_channel
    from hub.channels.instagram.emulator import InstagramEmulator
    from hub.models import Channel

    emu = InstagramEmulator()
    account = emu.add_account("demo.shop")
    emu.world.echo_sends = True
    with emu.serve() as base:
        channel_id = create_instagram_channel(runtime, {
            "name": "Demo shop Instagram", "ig_user_id": account.id, "access_token": account.token,
            "app_secret": account.app_secret, "verify_token": account.verify_token, "api_base_url": base},
            now=utcnow())
        with runtime.db.scope() as session:
            key = session.get(Channel, channel_id).key
        emu.subscribe(account, f"{hub_url}/webhooks/instagram/{key}")

        def new(i: int, rng: random.Random) -> Any:
            customer = emu.customer(account, str(rng.randrange(10**15, 10**16)))
            customer.set_profile(NAMES[i], NAMES[i].lower().replace(" ", "."))
            customer.send_text(QUESTIONS[0])
            return customer

        def again(customer: Any, rng: random.Random) -> None:
            if rng.random() < 0.15:
                customer.reply_from_app("Thanks for writing! We'll answer here shortly.")
            else:
                customer.send_text(rng.choice(QUESTIONS))

        yield ChannelDemo("instagram", base, Chatter(new, again, emu.flush), f"account @{account.username}")


CHANNELS: dict[str, Callable[[Any, str], Any]] = {
    "whatsapp": whatsapp_demo, "telegram": telegram_demo, "instagram": instagram_demo}


def run(config: Config, *, crm: str | None, every: float, chat: bool = True,
        channels: tuple[str, ...] = ("whatsapp",), announce: Callable[[str], None] = print) -> None:
    from migrations.apply import upgrade
    from hub.processes import run_web
    from hub.platform.runtime import Runtime
    from hub.models.users import create_user

    unknown = [kind for kind in channels if kind not in CHANNELS]
    if unknown or not channels:
        raise ValueError(f"demo channels are {', '.join(CHANNELS)}; not {', '.join(unknown) or 'none'}")
    config = demo_config(config)
    db_file = Path(config.database_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    upgrade(config.database_url)
    runtime = Runtime.from_config(config)
    hub_url = config.base_url.rstrip("/")
    password = secrets.token_urlsafe(9)
    with contextlib.ExitStack() as stack, crm_emulator(crm, chat=chat) as crm_setup:
        now = utcnow()
        with runtime.db.scope() as session:
            create_user(session, email="demo@example.com", password=password, role="admin", now=now,
                        name="Demo admin")
        demos = [stack.enter_context(CHANNELS[kind](runtime, hub_url)) for kind in dict.fromkeys(channels)]
        pages: list[tuple[str, str]] = []
        if crm_setup:
            _, pages, checked = connect_crm(runtime, crm_setup, now=now)
            announce(f"demo: {crm_setup.kind} Test connection: {checked.message}")
        stop = threading.Event()
        chatters = [d.chatter for d in demos]
        chatter = threading.Thread(target=lambda: (time.sleep(3), customers(chatters, stop, every,
                                                                          random.Random())),
                                   name="demo-customers", daemon=True)
        chatter.start()
        announce(f"demo: log in as demo@example.com / {password}")
        for d in demos:
            announce(f"demo: {d.kind} emulator at {d.emulator_url} ({d.note})")
        if crm_setup:
            announce(f"demo: {crm_setup.kind} emulator connected")
        for title, url in pages:
            announce(f"demo: {title} (read and answer the chats there): {url}")
        announce(f"demo: the inbox at {hub_url}/admin/inbox shows every channel's conversations")
        try:
            run_web(runtime, with_background=True, announce=announce)
        finally:
            stop.set()
