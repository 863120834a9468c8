"""Configuration: the documented keys load; every mistake is one line naming the key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mailbot import config as cfg

ROOT = Path(__file__).resolve().parent.parent


def base() -> dict:
    with (ROOT / "config" / "example.toml").open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(autouse=True)
def passwords(monkeypatch):
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "imap-secret")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "smtp-secret")


def error_of(data: dict) -> str:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse(data)
    return str(info.value)


def test_example_config_documents_a_valid_configuration():
    config = cfg.load(ROOT / "config" / "example.toml")
    assert config.event.start.isoformat() == "2021-05-31T10:00:00+02:00"
    assert config.event.deadline.isoformat() == "2021-05-30T23:59:00+02:00"
    assert config.imap.password == "imap-secret" and config.smtp.password == "smtp-secret"
    assert "imap-secret" not in repr(config), "passwords never appear in a repr or log"
    assert config.daemon.poll_interval == 60


def test_demo_config_is_valid():
    config = cfg.load(ROOT / "examples" / "demo.toml")
    assert config.maildir is not None and config.smtp.dry_run_dir is not None
    assert config.event.start.year > 2025, "the demo event lies in the future"


@pytest.mark.parametrize("section, key, expected", [
    ("event", "start", "[event] start: missing"),
    ("event", "title", "[event] title: missing"),
    ("zoom", "url", "[zoom] url: missing"),
    ("contact", "address", "[contact] address: missing"),
    ("imap", "host", "[imap] host: missing"),
    ("imap", "username", "[imap] username: missing"),
    ("database", "path", "[database] path: missing"),
])
def test_missing_key_is_named(section, key, expected):
    data = base()
    del data[section][key]
    assert error_of(data) == expected


@pytest.mark.parametrize("change, expected", [
    (("event", "timezone", "Europe/Bielefeld"), "[event] timezone: unknown time zone"),
    (("event", "end", "2021-05-31T09:00:00"), "[event] end: must be after start"),
    (("event", "capacity", 0), "[event] capacity: must be at least 1"),
    (("event", "capacity", "viele"), "[event] capacity: must be a whole number"),
    (("event", "language", "fr"), "[event] language: must be one of de, en"),
    (("imap", "security", "ssl"), "[imap] security: must be one of tls, starttls, none"),
    (("imap", "security", "none"), "[imap] security: \"none\" sends passwords in clear text"),
    (("imap", "port", 99999), "[imap] port: must be at most 65535"),
    (("imap", "processed_folder", "INBOX"), "[imap] processed_folder: must differ"),
    (("zoom", "url", "zoom.us/j/1"), "[zoom] url: must start with https://"),
    (("contact", "address", "nathalie"), "[contact] address: not an e-mail address"),
    (("contact", "address", "n@isi.example>\r\nRCPT TO:<x@y.example"),
     "[contact] address: not an e-mail address"),
    (("smtp", "connections", 0), "[smtp] connections: must be at least 1"),
    (("smtp", "connections", 11), "[smtp] connections: at most 10"),
])
def test_wrong_value_is_named(change, expected):
    data = base()
    section, key, value = change
    data[section][key] = value
    assert error_of(data).startswith(expected)


def test_unset_password_variable_is_named(monkeypatch):
    monkeypatch.delenv("MAILBOT_IMAP_PASSWORD")
    assert error_of(base()) == ("[imap] password_env: environment variable "
                                "MAILBOT_IMAP_PASSWORD is not set")


def test_password_file_is_read_from_the_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "imap-password").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    data = base()
    del data["imap"]["password_env"]
    data["imap"]["password_file"] = "imap-password"
    assert cfg.parse(data).imap.password == "from-systemd"


def test_missing_password_file_is_named(tmp_path):
    data = base()
    del data["imap"]["password_env"]
    data["imap"]["password_file"] = str(tmp_path / "nope")
    assert error_of(data).startswith("[imap] password_file: cannot read")


def test_unknown_section_and_two_inboxes_are_refused():
    data = base()
    data["imapp"] = {}
    assert error_of(data).startswith("[imapp]: unknown section")
    data = base()
    data["maildir"] = {"path": "var/Maildir"}
    assert error_of(data) == "[imap] and [maildir]: give one inbox, not both"


def test_dry_run_needs_no_smtp_host():
    data = base()
    data["smtp"] = {"dry_run_dir": "var/out"}
    assert cfg.parse(data).smtp.dry_run_dir == Path("var/out")


def test_config_path_order(monkeypatch):
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    assert cfg.resolve_path(None) == Path("config/mailbot.toml")
    monkeypatch.setenv("MAILBOT_CONFIG", "/etc/mailbot.toml")
    assert cfg.resolve_path(None) == Path("/etc/mailbot.toml")
    assert cfg.resolve_path("x.toml") == Path("x.toml")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailbot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_missing_key_exits_2_with_one_line(tmp_path):
    text = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('timezone = "Europe/Berlin"', ""), encoding="utf-8")
    result = run_cli("--config", str(broken), "run", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mailbot: {broken}: [event] timezone: missing"]
    assert "Traceback" not in result.stderr


def test_cli_missing_file_and_bad_toml_exit_2(tmp_path):
    result = run_cli("--config", str(tmp_path / "none.toml"), "run", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"mailbot: {tmp_path / 'none.toml'}: config file not found"
    bad = tmp_path / "bad.toml"
    bad.write_text("[event\n")
    result = run_cli("--config", str(bad), "run", "--once", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not valid TOML" in result.stderr


def test_cli_unreachable_imap_server_exits_2_with_one_line(tmp_path):
    from servers import free_port

    text = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
    text = text.replace('host = "imap.example.org"', 'host = "127.0.0.1"')
    text = text.replace("port = 993", f"port = {free_port()}")
    text = text.replace('security = "tls"', 'security = "none"', 1)
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    env_result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(path), "run", "--once"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"MAILBOT_IMAP_PASSWORD": "imap-secret", "MAILBOT_SMTP_PASSWORD": "x",
             "PATH": "/usr/bin:/bin"},
    )
    assert env_result.returncode == 2
    lines = env_result.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0]
    assert "imap-secret" not in env_result.stderr


def test_datasette_metadata_describes_every_column(tmp_path):
    import json

    from mailbot.store import Store

    meta = json.loads((ROOT / "config" / "datasette-metadata.json").read_text())
    tables = meta["databases"]["mailbot"]["tables"]
    store = Store(tmp_path / "mailbot.sqlite")
    try:
        for name in ("messages", "registrations", "outbox"):
            columns = {c.name for c in store.db[name].columns}
            assert columns == set(tables[name]["columns"]), name
        assert set(store.db.table_names()) | set(store.db.view_names()) == set(tables)
    finally:
        store.close()


@pytest.mark.parametrize("section, typo, expected", [
    ("event", "capacitiy", "[event] capacitiy: unknown key — did you mean capacity?"),
    ("event", "registration_dedline",
     "[event] registration_dedline: unknown key — did you mean registration_deadline?"),
    ("daemon", "poll_intervall", "[daemon] poll_intervall: unknown key — did you mean "
                                 "poll_interval?"),
    ("limits", "max_message_megabytes", "[limits] max_message_megabytes: unknown key — did "
                                        "you mean max_message_mb?"),
    ("privacy", "retain_days", "[privacy] retain_days: unknown key — did you mean "
                               "retain_days_after_event?"),  # it would be silently unread
    ("zoom", "colour", "[zoom] colour: unknown key (known: meeting_id, passcode, url)"),
])
def test_unknown_key_is_an_error_with_the_nearest_name(section, typo, expected):
    data = base()
    data[section][typo] = 5
    assert error_of(data) == expected


def test_a_typo_for_a_required_key_is_named_as_typo_not_as_missing():
    data = base()
    data["event"]["strat"] = data["event"].pop("start")
    assert error_of(data) == "[event] strat: unknown key — did you mean start?"
    data = base()
    data["remiders"] = {"before": ["1h"]}
    assert error_of(data) == "[remiders]: unknown section — did you mean reminders?"


def test_keys_of_unused_branches_are_still_known():
    data = base()
    data["smtp"]["dry_run_dir"] = "var/out"  # host, port, password_env stay: no error
    assert cfg.parse(data).smtp.dry_run_dir == Path("var/out")


def test_cli_typo_exits_2_with_one_line_also_in_check(tmp_path):
    text = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("capacity = 300", "capacitiy = 300"), encoding="utf-8")
    result = run_cli("--config", str(broken), "status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mailbot: {broken}: [event] capacitiy: unknown key — did you mean capacity?"]
    result = run_cli("--config", str(broken), "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "✗ " in result.stdout and "did you mean capacity?" in result.stdout


def test_check_warns_about_the_copied_example(example_config):
    from mailbot.desk.doctor import warnings

    now = dt.datetime(2021, 5, 31, 6, 0, tzinfo=dt.UTC)  # before the start, after the 24h
    found = warnings(example_config, now, confirmed=301)
    assert "[zoom] url: 'https://zoom.us/j/84512345678?pwd=...' looks like a placeholder" \
        in "\n".join(found)
    assert any(w.startswith("[zoom] passcode: '...'") for w in found)
    assert any(w.startswith("[imap] host: 'imap.example.org'") for w in found)
    assert any(w.startswith("[reminders] before: the reminder 24h") for w in found)
    assert any(w.startswith("[event] capacity: 300, but 301") for w in found)
    later = warnings(example_config, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert later[0] == "[event] start: 31.05.2021 10:00 has passed — is this the right event?"
    late = dataclasses.replace(example_config, event=dataclasses.replace(
        example_config.event, registration_deadline=example_config.event.end))
    assert any("registration_deadline: 31.05.2021 15:00 is after the start"
               in w for w in warnings(late, now))


def test_the_digest_time_may_be_written_without_its_leading_zero(example_config):
    import datetime as dt
    import tomllib

    from mailbot import config as cfg

    data = tomllib.loads(example_config.source.read_text())
    data["digest"] = {"to": "orga@isi-innovation.de", "at": "8:00"}
    assert cfg.parse(data, secrets=False).digest.at == dt.time(8, 0)
    data["digest"]["at"] = "8 Uhr"
    with pytest.raises(cfg.ConfigError, match=r'\[digest\] at: not a time like "08:00"'):
        cfg.parse(data, secrets=False)
