"""The German Excel export (pure: plain rows in, text out)."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from mailbot.replies.report import to_excel_csv


def test_excel_csv_is_semicolon_local_time_and_never_a_formula():
    rows = [{"email": "a@b.example", "name": "=HYPERLINK(\"http://x\")", "organisation":
             "Müller; Söhne", "registered_at": "2027-05-31T08:00:00+00:00"}]
    columns = ("email", "name", "organisation", "registered_at")
    text = to_excel_csv(rows, columns, columns, ZoneInfo("Europe/Berlin"))
    assert text.startswith("\ufeffemail;name;organisation;registered_at\r\n")
    [row] = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))[1:]
    assert row == ["a@b.example", "'=HYPERLINK(\"http://x\")", "Müller; Söhne",
                   "31.05.2027 10:00"]
