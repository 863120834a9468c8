"""A mail and the organiser's desk are one kind of request: policy.plan decides on both.

`mailbot add` / `mailbot cancel` and a registration / cancellation mail go through the same
plan and leave the same rows and replies (the waitlist promotion included)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from conftest import registration_mail

from mailbot.core.clock import now_utc
from mailbot.core.models import InboundMail, Summary
from mailbot.desk.organiser import Desk
from mailbot.rules import policy
from mailbot.service.processor import Processor
from mailbot.store import Store

ROW = ("status", "name", "organisation", "ics_sequence", "event_version", "registered_by")


@pytest.fixture
def config(example_config):
    """The example event a month ahead, with one place."""
    start = now_utc() + dt.timedelta(days=30)
    event = dataclasses.replace(example_config.event, start=start, capacity=1,
                                end=start + dt.timedelta(hours=5), registration_deadline=None)
    return dataclasses.replace(example_config, event=event)


@pytest.fixture
def planned(monkeypatch):
    """The keys of the requests policy.plan was asked about."""
    keys: list[str] = []
    real = policy.plan

    def spy(request, *args, **kwargs):
        keys.append(request.key)
        return real(request, *args, **kwargs)

    monkeypatch.setattr(policy, "plan", spy)
    return keys


def by_mail(processor: Processor, name: str, address: str, text: str) -> None:
    mail = InboundMail(address, registration_mail(name, address, text), now_utc())
    assert processor.handle(mail, Summary()) == ("cancel" if text == "abmelden" else "register")


def state(store: Store) -> tuple:
    regs = store.registrations(["anna@a.example", "bernd@b.example"])
    rows = {e: tuple(getattr(r, c) for c in ROW) for e, r in regs.items()}
    replies = [(r["kind"], r["recipient"]) for r in store.replies_after(0)]
    return rows, replies


def test_the_desk_and_a_mail_reach_the_same_rows_through_the_same_plan(config, planned):
    with Store(":memory:") as mailed, Store(":memory:") as desked:
        service = Processor(config, mailed, transport=None)
        desk = Desk(Processor(config, desked, transport=None))

        by_mail(service, "Anna Arndt", "anna@a.example", "hiermit melde ich mich an.")
        desk.add("anna@a.example", "Anna Arndt", None, mail=True)
        by_mail(service, "Bernd Bauer", "bernd@b.example", "hiermit melde ich mich an.")
        desk.add("bernd@b.example", "Bernd Bauer", None, mail=True)
        assert state(mailed) == state(desked)
        assert state(mailed)[0]["bernd@b.example"][0] == "waitlisted"

        by_mail(service, "Anna Arndt", "anna@a.example", "abmelden")
        desk.cancel("anna@a.example")

        rows, replies = state(mailed)
        assert (rows, replies) == state(desked)
        assert rows["anna@a.example"][:1] + rows["anna@a.example"][3:4] == ("cancelled", 1)
        assert rows["bernd@b.example"][0] == "confirmed", "the first on the waitlist moved up"
        assert rows["bernd@b.example"][4] == service.version
        assert replies[-2:] == [("cancellation", "anna@a.example"),
                                ("confirmation", "bernd@b.example")]
        for store in (mailed, desked):
            assert "Platz frei: bernd@b.example" in store.db.execute(
                "SELECT group_concat(reason) FROM messages").fetchone()[0]
    assert len(planned) == 6 and planned.count("manual") == 3, "every request through plan"
