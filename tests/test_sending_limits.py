"""Sending within the provider's limits, against aiosmtpd answering "slow down" now and then,
and the provider presets."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from conftest import registration_mail, rows, with_port
from servers import RecordingHandler, free_port

from mailbot import config as cfg
from mailbot.cli import main
from mailbot.config import providers
from mailbot.rules import rate

WINDOW = 1.5  # the test's "minute", in seconds


class ThrottlingHandler(RecordingHandler):
    """Answers every ``every``-th message with IONOS's "450 … limit exceeded" and keeps the
    time it accepted each other one."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.attempts = 0
        self.accepted_at: list[float] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.attempts += 1
        if self.attempts % self.every == 0:
            return "450 4.7.0 Mail send limit exceeded"
        self.accepted_at.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def throttling():
    handler = ThrottlingHandler(every=3)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_replies_go_once_each_and_never_faster_than_the_limit(
        make_config, mailbox, throttling, monkeypatch):
    handler, port = throttling
    monkeypatch.setitem(rate.WINDOWS, "minute", WINDOW)
    monkeypatch.setattr(rate, "THROTTLE_FIRST", 0.5)
    config = make_config()
    text = _with_limit(config.read_text(), "max_per_minute = 2\nmax_per_day = 100")
    config.write_text(with_port(text, "smtp", port))
    people = [f"p{i}@x{i}.example" for i in range(6)]
    for i, address in enumerate(people):
        mailbox.append(registration_mail(f"Person {i}", address))

    _run_until_all_sent(config)

    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(people), "each once"
    assert handler.attempts > len(people), "some were answered 450 and sent again"
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'failed'") == [(0,)]
    times = handler.accepted_at
    for t in times:  # in no window of the limit's length did the server take more than 2
        assert sum(1 for u in times if t - WINDOW < u <= t) <= 2, times
    status = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert "Sending budget: 94 of 100 replies left for the next 24 hours" in status.output


def _run_until_all_sent(config) -> None:
    """``run --once`` again and again (as cron would) until every reply is sent, 90 s at most."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
        assert result.exit_code == 0, result.output
        if rows(config, "SELECT count(*) FROM outbox WHERE status != 'sent'") == [(0,)]:
            return
        time.sleep(0.2)


def test_answers_to_mail_go_before_reminders_when_the_budget_is_short():
    rows_ = [{"id": 1, "recipient": "a@x", "kind": "reminder"},
             {"id": 2, "recipient": "b@x", "kind": "reminder"},
             {"id": 3, "recipient": "c@x", "kind": "confirmation"},
             {"id": 4, "recipient": "a@x", "kind": "cancellation"},
             {"id": 5, "recipient": "d@x", "kind": "waitlisted"}]

    chosen = rate.choose(rows_, 3)

    assert [r["id"] for r in chosen] == [1, 3, 5] or [r["id"] for r in chosen] == [2, 3, 5]
    assert [r["id"] for r in rate.choose(rows_, 2)] == [3, 5], "a's cancellation waits " \
        "behind a's reminder"


def test_slow_down_answers_are_recognised():
    assert rate.is_throttle("450 Mail send limit exceeded")
    assert rate.is_throttle("421 4.7.0 Try again later, closing connection")
    assert rate.is_throttle("451 4.7.500 Server busy. Please try again later")
    assert rate.is_throttle("452 Too many messages, rate limit reached")
    assert rate.is_throttle("554 5.2.0 STOREDRV.Submission.Exception:"
                            "SubmissionQuotaExceededException; Failed to process message")
    assert rate.is_throttle("550 5.4.5 Daily user sending quota exceeded.")
    assert not rate.is_throttle("451 4.3.0 Temporary local problem")
    assert not rate.is_throttle("550 5.1.1 User unknown")
    pauses = [rate.pause(n).total_seconds() for n in (1, 2, 3, 10)]
    assert 30 <= pauses[0] <= 60 and 60 <= pauses[1] <= 120 and pauses[3] <= 3600


PRESETS = sorted(providers.PRESETS)  # every preset, from the code's own list
PER_CUSTOMER_HOST = {"all-inkl"}  # its host names the customer: given by hand


def _preset_config(example_config, tmp_path, monkeypatch, name: str) -> Path:
    text = _strip_servers(example_config.source.read_text())
    host = ('host = "w0123456.kasserver.com"\n' if name in PER_CUSTOMER_HOST else "")
    text = text.replace("[imap]\n", f'[imap]\nprovider = "{name}"\n{host}', 1)
    text = text.replace("[smtp]\n", f"[smtp]\n{host}", 1)
    path = tmp_path / "mailbot.toml"
    path.write_text(text)
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "x")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "x")
    return path


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_fills_servers_and_limits(example_config, tmp_path, monkeypatch, name):
    path = _preset_config(example_config, tmp_path, monkeypatch, name)

    config = cfg.load(path)

    assert config.imap.host and config.imap.port == 993 and config.imap.security == "tls"
    assert config.smtp.host and config.smtp.port in (465, 587)
    assert any((config.smtp.max_per_minute, config.smtp.max_per_hour))
    assert config.imap.save_sent is (name not in ("microsoft365", "google"))
    if name == "google":  # the DMARC check believes Gmail's own Authentication-Results
        assert config.imap.authserv_id == "mx.google.com"


def test_a_preset_value_can_be_overridden(example_config, tmp_path, monkeypatch):
    text = _strip_servers(example_config.source.read_text())
    text = text.replace("[imap]\n", '[imap]\nprovider = "ionos"\nport = 1993\n', 1)
    text = text.replace("[smtp]\n", "[smtp]\nmax_per_hour = 400\n", 1)
    path = tmp_path / "mailbot.toml"
    path.write_text(text)
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "x")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "x")

    config = cfg.load(path)

    assert (config.imap.host, config.imap.port) == ("imap.ionos.de", 1993)
    assert (config.smtp.host, config.smtp.max_per_hour) == ("smtp.ionos.de", 400)
    assert config.smtp.connections == 1


def test_an_unknown_preset_names_the_known_ones(example_config, tmp_path):
    text = example_config.source.read_text().replace("[imap]\n", '[imap]\nprovider = "aol"\n')
    path = tmp_path / "mailbot.toml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=r"\[imap\] provider: unknown provider 'aol' "
                                              r"\(known: all-inkl, gmx, google, hetzner, ionos"):
        cfg.load(path)


def _strip_servers(text: str) -> str:
    """example.toml without its host/port/security lines in [imap] and [smtp]."""
    out, section = [], ""
    for line in text.split("\n"):
        if line.startswith("["):
            section = line
        if section in ("[imap]", "[smtp]") and line.split(" = ")[0] in (
                "host", "port", "security"):
            continue
        out.append(line)
    return "\n".join(out)


def test_budget_is_counted_over_sliding_windows():
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    sent = [now - dt.timedelta(seconds=s) for s in (5, 30, 100, 4000)]
    assert rate.allowed(sent, now, {"minute": 2}) == 0
    assert rate.allowed(sent, now, {"minute": 5, "hour": 4}) == 1
    assert rate.allowed(sent, now, {"day": 10}) == 6
    assert rate.allowed(sent, now, {}) is None


def test_an_announcement_beyond_the_days_budget_says_so_and_waits(make_config, mailbox, smtp):
    config = make_config()
    config.write_text(_with_limit(config.read_text(), "max_per_day = 3"))
    for i in range(2):
        mailbox.append(registration_mail(f"Person {i}", f"p{i}@x{i}.example"))
    assert CliRunner().invoke(main, ["--config", str(config), "run", "--once"]).exit_code == 0
    config.write_text(config.read_text().replace('passcode = "Auftakt21"',
                                                 'passcode = "Neu2021"'))

    result = CliRunner().invoke(main, ["--config", str(config), "announce", "--yes"])

    assert result.exit_code == 0, result.output
    assert "2 announcements queued, 1 delivered" in result.output
    assert "1 held back by the sending limits" in result.output
    assert len(smtp.envelopes) == 3
    status = CliRunner().invoke(main, ["--config", str(config), "status"]).output
    assert "Sending budget: 0 of 3 replies left for the next 24 hours" in status


def _with_limit(text: str, line: str) -> str:
    return text.replace('security = "none"\n\n[database]', f'security = "none"\n{line}\n\n'
                                                           f'[database]')


@pytest.mark.parametrize("name", PRESETS)
def test_check_prints_what_each_preset_will_use(example_config, tmp_path, monkeypatch, name):
    from mailbot.desk.doctor import setup_lines

    config = cfg.load(_preset_config(example_config, tmp_path, monkeypatch, name))
    imap, smtp = setup_lines(config)

    assert imap.startswith(f"IMAP {config.imap.host}:{config.imap.port} {config.imap.security} "
                           f"(preset {name}), login ")
    assert smtp.startswith(f"SMTP {config.smtp.host}:{config.smtp.port} {config.smtp.security}")
    assert ", at most " in smtp, "every preset names its sending limit"


def test_check_prints_what_the_microsoft_preset_will_use(example_config, tmp_path, monkeypatch):
    from mailbot.desk.doctor import setup_lines

    path = _preset_config(example_config, tmp_path, monkeypatch, "microsoft365")

    imap, smtp = setup_lines(cfg.load(path))

    assert imap.startswith("IMAP outlook.office365.com:993 tls (preset microsoft365), login ")
    assert imap.endswith("copy of each reply in Sent: no")
    assert smtp.startswith("SMTP smtp.office365.com:587 starttls, login ")
    assert smtp.endswith("at most 30/minute, 10000/day, 3 connections")


class PerWindowHandler(RecordingHandler):
    """Takes at most ``most`` messages per WINDOW seconds; beyond, "421 4.7.0" at MAIL FROM
    (and aiosmtplib closes the connection, as it should after a 421)."""

    def __init__(self, most: int):
        super().__init__()
        self.most = most
        self.accepted_at: list[float] = []
        self.refused = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        now = time.monotonic()
        if sum(1 for t in self.accepted_at if now - WINDOW < t) >= self.most:
            self.refused += 1
            return "421 4.7.0 Too many messages, try again later"
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.accepted_at.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


def test_a_server_stricter_than_the_configured_limit_loses_and_repeats_nothing(
        make_config, mailbox, monkeypatch):
    handler = PerWindowHandler(most=2)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setitem(rate.WINDOWS, "minute", WINDOW)
    monkeypatch.setattr(rate, "THROTTLE_FIRST", 0.5)
    try:
        config = make_config()
        config.write_text(with_port(_with_limit(config.read_text(), "max_per_minute = 5"),
                                    "smtp", controller.port))
        people = [f"p{i}@x{i}.example" for i in range(6)]
        for i, address in enumerate(people):
            mailbox.append(registration_mail(f"Person {i}", address))

        _run_until_all_sent(config)
    finally:
        controller.stop()

    assert handler.refused > 0, "the server did say 421"
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(people), "each once"
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'failed'") == [(0,)]
