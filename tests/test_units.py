"""The shipped systemd units, the organiser wrapper and docs/install.md agree with each other,
and the units stay hardened: `systemd-analyze security` rates both at 2.0 or below, offline
(no running systemd needed; Debian's package `systemd` brings systemd-analyze, see
scripts/install-servers)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / "config"
UNITS = ("mailbot.service", "mailbot@.service")
INSTALL = ROOT / "docs" / "install.md"
WRAPPER = CONFIG / "mailbot-organiser"
NAME = "auftakt2021"  # the instance the tests and docs/install.md use
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is missing (Debian: apt-get install systemd; "
                            "scripts/install-servers does it)")


def settings(unit: str, instance: str = NAME) -> dict[str, list[str]]:
    """The [Service] settings of a shipped unit, %i replaced by ``instance``; every value of
    a key that may repeat."""
    found: dict[str, list[str]] = {}
    section = None
    for line in (CONFIG / unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value.replace("%i", instance))
    return found


def one(unit_settings: dict[str, list[str]], key: str) -> str:
    [value] = unit_settings[key]
    return value


def environment(unit_settings: dict[str, list[str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in unit_settings["Environment"])


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_the_units_exposure_is_at_most_2(unit):
    result = subprocess.run([ANALYZE, "security", "--offline=yes", str(CONFIG / unit)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    exposure = float(found[1])
    weak = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert exposure <= MAX_EXPOSURE, "\n".join(weak)


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_understands_every_line_of_the_units(unit):
    """A mistyped key (ProtectClok=) is ignored by systemd, with a warning only; verify
    names it. /opt/mailbot is not installed here, so its missing program is forgiven."""
    result = subprocess.run([ANALYZE, "verify", str(CONFIG / unit)],
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "/opt/mailbot/.venv/bin/mailbot is not executable"
                  not in line]
    assert complaints == []


def test_the_units_keep_what_the_service_needs():
    """Hardening must not take away what mailbot runs on."""
    for unit in UNITS:
        s = settings(unit)
        assert one(s, "Type") == "notify" and "WatchdogSec" in s, unit
        assert one(s, "DynamicUser") == "yes", unit
        families = set(one(s, "RestrictAddressFamilies").split())
        assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families, unit  # IMAP, SMTP, sd_notify
        assert "PrivateNetwork" not in s and "IPAddressDeny" not in s, unit
        assert one(s, "ExecStart") == "/opt/mailbot/.venv/bin/mailbot run", unit
        assert one(s, "WorkingDirectory") == "/opt/mailbot", unit


def run_wrapper(tmp_path: Path, *args: str, present=("imap-password", "smtp-password")):
    """config/mailbot-organiser with a systemd-run that only prints its arguments."""
    bin_dir, etc = tmp_path / "bin", tmp_path / "etc"
    bin_dir.mkdir(exist_ok=True)
    etc.mkdir(exist_ok=True)
    fake = bin_dir / "systemd-run"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    for name in ("mailbot.toml", f"{NAME}.toml"):
        (etc / name).write_text("")
    for name in present:
        (etc / name).write_text("secret")
        (etc / f"{NAME}.{name}").write_text("secret")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MAILBOT_ETC": str(etc)}
    return subprocess.run(["sh", str(WRAPPER), *args], capture_output=True, text=True,
                          env=env, timeout=30)


def parse_systemd_run(argv: list[str]) -> tuple[dict[str, list[str]], dict[str, str], list[str]]:
    """systemd-run's -p properties, -E environment and the command."""
    props: dict[str, list[str]] = {}
    env: dict[str, str] = {}
    i = 0
    while i < len(argv):
        if argv[i] == "-p":
            key, value = argv[i + 1].split("=", 1)
            props.setdefault(key, []).append(value)
            i += 2
        elif argv[i] == "-E":
            key, value = argv[i + 1].split("=", 1)
            env[key] = value
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return props, env, argv[i:]
    raise AssertionError(f"no command in {argv}")


@pytest.mark.parametrize(("unit", "option"), [("mailbot.service", ()),
                                              ("mailbot@.service", ("--instance", NAME))])
def test_the_wrapper_runs_as_the_units_user_with_its_state_config_and_credentials(
        tmp_path, unit, option):
    """Another user or state folder would chown the database away from the service;
    other credentials would make add/cancel fail where the service works."""
    result = run_wrapper(tmp_path, *option, "cancel", "anna@example.org", "a b")
    assert result.returncode == 0, result.stderr
    props, env, command = parse_systemd_run(result.stdout.splitlines())
    s = settings(unit)
    etc = str(tmp_path / "etc")
    assert props["DynamicUser"] == ["yes"]
    # a DynamicUser's name is the unit's name before "@" unless User= says otherwise
    assert props["User"] == s.get("User", ["mailbot"])
    for key in ("StateDirectory", "StateDirectoryMode", "UMask", "WorkingDirectory"):
        assert props[key] == s[key], key
    assert env["MAILBOT_CONFIG"] == environment(s)["MAILBOT_CONFIG"].replace("/etc/mailbot",
                                                                              etc)
    assert sorted(props["LoadCredential"]) == sorted(
        c.replace("/etc/mailbot", etc) for c in s["LoadCredential"])
    program = one(s, "ExecStart").split()[0]
    assert command == [program, "cancel", "anna@example.org", "a b"]


def test_the_wrapper_hands_over_the_oauth2_secret_when_there_is_one(tmp_path):
    result = run_wrapper(tmp_path, "--instance", NAME, "add", "x@y.example",
                         present=("oauth2-client-secret",))
    props, _, _ = parse_systemd_run(result.stdout.splitlines())
    assert props["LoadCredential"] == [
        f"oauth2-client-secret:{tmp_path}/etc/{NAME}.oauth2-client-secret"]


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a b", "-x", "x/y"])
def test_the_wrapper_refuses_an_instance_that_is_no_name(tmp_path, bad):
    result = run_wrapper(tmp_path, "--instance", bad, "status")
    assert result.returncode == 2 and result.stdout == ""
    assert "--instance needs the NAME of mailbot@NAME" in result.stderr


def test_the_wrapper_says_which_configuration_is_missing(tmp_path):
    result = run_wrapper(tmp_path, "--instance", "sommerfest", "status")
    assert result.returncode == 2 and result.stdout == ""
    assert f"{tmp_path}/etc/sommerfest.toml not found" in result.stderr


def doc() -> str:
    return INSTALL.read_text()


def test_install_md_names_the_paths_the_units_and_the_wrapper_use():
    text = doc()
    for unit in UNITS:
        s = settings(unit)
        paths = [c.split(":", 1)[1] for c in s["LoadCredential"]]
        paths += [environment(s)["MAILBOT_CONFIG"], one(s, "ExecStart").split()[0],
                  f"/var/lib/{one(s, 'StateDirectory')}", f"/etc/systemd/system/{unit}",
                  f"config/{unit}"]
        for path in paths:
            assert path in text, (unit, path)
    assert "/usr/local/sbin/mailbot-organiser" in text
    assert f"ln -s /opt/mailbot/config/{WRAPPER.name} /usr/local/sbin/mailbot-organiser" in text


def test_every_repository_file_install_md_names_exists():
    names = set(re.findall(r"(?:/opt/mailbot/|\.\./|`)((?:config|scripts|tests|docs)/[\w@.\-]+)",
                           doc()))
    assert names, "the doc names no file of the repository"
    missing = sorted(n for n in names if not (ROOT / n).exists())
    assert missing == []


def test_install_md_configuration_serves_the_service_and_the_trial():
    """The doc's one configuration: relative password files named as the credentials both
    units and the wrapper hand over, and a database in the unit's state folder."""
    blocks = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", doc(), re.S)]
    assert len(blocks) == 2  # mailbot.service, mailbot@NAME
    for unit, block in zip(UNITS, blocks, strict=True):
        s = settings(unit)
        credentials = {c.split(":", 1)[0] for c in s["LoadCredential"]}
        for section in ("imap", "smtp"):
            name = block[section]["password_file"]
            assert not os.path.isabs(name) and name in credentials, (unit, section)
            assert "password_env" not in block[section]
        state = f"/var/lib/{one(s, 'StateDirectory')}"
        assert Path(block["database"]["path"]).parent == Path(state), unit


def test_a_relative_password_file_is_read_from_the_credentials_directory(tmp_path,
                                                                         monkeypatch):
    """What the doc's one configuration relies on, in mailbot's own lookup."""
    from mailbot.config.section import secret_path

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert secret_path("imap-password") == tmp_path / "imap-password"
    assert secret_path("/etc/mailbot/x") == Path("/etc/mailbot/x")


def test_install_md_uses_commands_mailbot_has():
    from mailbot.cli import main

    shell = "".join(re.findall(r"```sh\n(.*?)```", doc(), re.S))
    used = set(re.findall(r"mailbot-organiser (?:--instance \S+ )?([a-z][a-z-]*)", shell))
    assert {"check", "status", "review"} <= used
    assert used <= set(main.list_commands(None))
