"""The abuse budgets count per owner, not per spelling (issue 20, point 8): plus-addresses,
Gmail's dots and subdomains of one domain draw on one budget, and people mailed who never
wrote have a daily cap (real Dovecot and aiosmtpd)."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main


def run(config, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def strangers(smtp, domain_part: str) -> int:
    return sum(domain_part in e.rcpt_tos[0] for e in smtp.envelopes)


def eve_and_seven(sender: str, batch: int) -> bytes:
    text = ("hiermit melde ich mich und meine Kolleginnen zum Auftakttreffen an:\r\n\r\n"
            + "\r\n".join(f"Petra Klein{batch}{i} (p.klein{batch}{i}@victim{batch}{i}.example)"
                          for i in range(7)))
    return registration_mail("Eve Mallory", sender, text)


def test_plus_addressed_senders_share_one_sender_budget(mailbox, smtp, make_config):
    """Eve writes 4 mails as eve+1@ … eve+4@, each with 7 strangers: one sender's budget
    (max_others_per_sender_per_day = 10) — 7 mailed, not 28."""
    config = make_config()
    for n in range(1, 5):
        mailbox.append(eve_and_seven(f"eve+{n}@gmail.com", n))

    run(config, "run", "--once")

    assert strangers(smtp, "@victim") == 7
    assert rows(config, "SELECT count(*) FROM messages WHERE action = 'review' AND reason "
                        "LIKE '%max_others_per_sender_per_day%'") == [(3,)]


def test_subdomains_of_one_sender_share_one_sender_budget(mailbox, smtp, make_config):
    config = make_config()
    for n in range(1, 5):
        mailbox.append(eve_and_seven(f"eve@mx{n}.evil.example", n))

    run(config, "run", "--once")

    assert strangers(smtp, "@victim") == 7


def test_people_mailed_who_never_wrote_have_a_daily_cap(mailbox, smtp, make_config):
    """Five senders at five domains, each naming one colleague elsewhere: with
    max_others_per_day = 3 three colleagues are mailed, two mails wait for a human."""
    config = make_config(extra="\n[limits]\nmax_others_per_day = 3\n")
    for i in range(5):
        mailbox.append(registration_mail(
            f"Sender {i}", f"sender{i}@verein{i}.example",
            f"ich melde mich und meine Kollegin Petra Klein (petra{i}@amt{i}.example) "
            f"zum Auftakttreffen an."))

    run(config, "run", "--once")

    assert strangers(smtp, "petra") == 3
    assert rows(config, "SELECT count(*) FROM messages WHERE action = 'review' AND reason "
                        "LIKE '%max_others_per_day%'") == [(2,)]


def test_plus_addresses_and_subdomains_do_not_fill_the_event(mailbox, smtp, make_config):
    """20 plus-addresses of one Gmail account and 20 subdomains of one domain, then a real
    person, at 30 places: the Gmail account gets its 5 replies a day, the domain its 20
    new registrations an hour, and the real person a place."""
    config = make_config(capacity=30)
    for i in range(20):
        mailbox.append(registration_mail(f"Mal Lory{i}", f"mal.lory+{i}@gmail.com"))
        mailbox.append(registration_mail(f"Person {i}", f"p@host{i}.bigcorp.example"))
    mailbox.append(registration_mail("Real Person", "real@verein.example"))

    run(config, "run", "--once")

    confirmed = [r[0] for r in rows(config, "SELECT email FROM registrations "
                                            "WHERE status = 'confirmed'")]
    assert "real@verein.example" in confirmed
    assert sum(a.endswith("@gmail.com") for a in confirmed) == 5
    assert sum(a.endswith(".bigcorp.example") for a in confirmed) == 20
    assert rows(config, "SELECT count(*) FROM registrations WHERE status = 'waitlisted'"
                ) == [(0,)]


def test_one_gmail_account_does_not_use_up_gmail_for_everybody(mailbox, smtp, make_config):
    """12 plus- and dot-spellings of one Gmail account with a domain cap of 10: that
    mailbox gets 5 replies, and another Gmail user is still answered; `approve` answers a
    held one after the organiser looked."""
    config = make_config(extra="\n[limits]\nreplies_per_domain_per_day = 10\n")
    for i in range(12):
        spelling = "m.a.x" if i % 2 else "max"
        mailbox.append(registration_mail(f"Max {i}", f"{spelling}+{i}@googlemail.com"))
    mailbox.append(registration_mail("Anna Arndt", "anna.arndt@gmail.com"))

    run(config, "run", "--once")

    answered = [e.rcpt_tos[0] for e in smtp.envelopes]
    assert "anna.arndt@gmail.com" in answered
    assert sum(a.startswith(("max+", "m.a.x+")) for a in answered) == 5
    [(held, reason)] = rows(config, "SELECT rowid, reason FROM messages WHERE action = 'review' "
                                    "ORDER BY rowid LIMIT 1")
    assert reason.startswith("Antwortlimit")

    smtp.envelopes.clear()
    run(config, "approve", str(held))

    assert len(smtp.envelopes) == 1
    assert rows(config, "SELECT count(*) FROM registrations") == [(7,)]


def test_whose_budget_an_address_draws_on():
    from mailbot.core.addresses import mailbox, org_domain
    from mailbot.rules.guard import burst_key

    assert mailbox("Max.Muster+x@GoogleMail.com") == "maxmuster@gmail.com"
    assert mailbox("anna+fachtag@a.example") == "anna@a.example"
    assert mailbox("a.b@web.de") == "a.b@web.de", "dots count outside Gmail"
    assert org_domain("p@mx1.mail.stadt-hamm.de") == "stadt-hamm.de"
    assert org_domain("p@x.co.uk") == "x.co.uk" != org_domain("p@y.co.uk")
    assert burst_key("m.a.x+3@gmail.com") == "max@gmail.com"
    assert burst_key("p@host7.bigcorp.example") == "bigcorp.example"


def test_an_older_database_counts_its_rows_by_owner_too(tmp_path, monkeypatch):
    """The migration fills the owner columns of the rows that were there before it."""
    import datetime as dt

    from mailbot import store as store_mod

    steps = store_mod.MIGRATIONS
    cut = next(i for i, m in enumerate(steps) if "recipient_mailbox" in (m.__doc__ or ""))
    path = tmp_path / "old.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(store_mod, "MIGRATIONS", steps[:cut])
        old = store_mod.Store(path)
        old.db.execute("INSERT INTO registrations (email, name, status, registered_at) VALUES "
                       "('m.a.x+1@gmail.com', 'Max', 'confirmed', '2021-05-21T07:00:00+00:00')")
        old.db.execute("INSERT INTO outbox (recipient, subject, kind, status, attempts, "
                       "created_at, body) VALUES ('p@mx.bigcorp.example', 's', "
                       "'confirmation', 'sent', 1, '2021-05-21T07:00:00+00:00', x'00')")
        old.db.conn.commit()
        old.close()
    store = store_mod.Store(path)
    since = dt.datetime(2021, 5, 21, tzinfo=dt.UTC)
    assert store.new_registrations(["max@gmail.com"], since) == {"max@gmail.com": 1}
    per_mailbox, per_domain = store.replies_since(since, ["q+z@host2.bigcorp.example"])
    assert per_domain == {"bigcorp.example": 1} and per_mailbox["q@host2.bigcorp.example"] == 0
