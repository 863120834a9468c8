"""The organiser's desk in ``mailbot serve``: a datasette plugin (registered in-process
like desk/gate.py) that adds German pages with buttons — "Zu beantworten" (approve or
dismiss a waiting mail), "Teilnehmende bearbeiten" (correct, cancel, move up, resend) and
"Person anmelden" (someone who phoned) — through datasette's ``register_routes``.

Every button is a POST form with datasette's CSRF token; the action is the organiser's
command of the same name, run by desk/actions.py through ``locked_or_queued``. Its one
German line comes back as a datasette message on the page the form was sent from.

The pages read through the store (never datasette's read-only connections, never SQL
from the request); the hooks act only on a datasette made by ``browse.make_datasette``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from datasette import hookimpl
from datasette.utils.asgi import Response

from mailbot.config import Config
from mailbot.desk import actions
from mailbot.desk.gate import LOGIN_PATH, ORGANISER, gate_of, local_path
from mailbot.store import Store

REVIEW_PATH = "/-/zu-beantworten"
PEOPLE_PATH = "/-/teilnehmende"
ADD_PATH = "/-/person-anmelden"
STATUS_ORDER = {"confirmed": 0, "held": 1, "waitlisted": 2, "cancelled": 3}


@dataclass(frozen=True)
class Site:
    """What the desk of one served instance works on: the database, and the configuration
    that the actions need (None: the pages only show, without buttons)."""

    database: Path
    config: Config | None = None

    @property
    def tz(self) -> dt.tzinfo:
        return self.config.event.tz if self.config else ZoneInfo("UTC")


def site_of(datasette: Any) -> Site | None:
    site = getattr(datasette, "mailbot_desk", None)
    return site if isinstance(site, Site) and gate_of(datasette) else None


def _allowed(datasette: Any, request: Any) -> bool:
    gate = gate_of(datasette)
    return gate is not None and (gate.password is None or request.actor == ORGANISER)


def _refused(request: Any) -> Response:
    if request.method == "POST":
        return Response.text("Bitte melden Sie sich zuerst an.", status=403)
    return Response.redirect(f"{LOGIN_PATH}?weiter={quote(request.full_path)}")


def _local(when: str | None, tz: dt.tzinfo) -> str:
    if not when:
        return ""
    try:
        return f"{dt.datetime.fromisoformat(when).astimezone(tz):%d.%m.%Y %H:%M}"
    except ValueError:
        return when


def _mails(site: Site) -> list[dict[str, Any]]:
    with Store(site.database) as store:
        rows = store.for_review()
    return [{"id": row["id"], "received": _local(row["received_at"], site.tz),
             "sender": row["sender"] if not str(row["sender"] or "").startswith("erased:")
             else "(gelöscht)", "subject": row["subject"] or "–",
             "reason": row["reason"] or "", "excerpt": (row["excerpt"] or "")[:300],
             "review": row["action"] == "review"} for row in rows]


def _people(site: Site) -> list[dict[str, Any]]:
    with Store(site.database) as store:
        regs = store.with_status(*actions.SHOWN)
    regs.sort(key=lambda r: STATUS_ORDER.get(r.status.value, 1))  # stable: arrival order
    return [{"email": r.email, "name": r.name, "organisation": r.organisation or "",
             "status": actions.STATUS_DE.get(r.status.value, r.status.value),
             # a held place is decided on "Zu beantworten" (its mail), not here
             "active": r.status.value not in ("cancelled", "held"),
             "waiting": r.status.value == "waitlisted"} for r in regs]


async def _page(datasette: Any, request: Any, template: str, **context: Any) -> Response:
    site = site_of(datasette)
    if site is None:
        return Response.text("Nicht gefunden.", status=404)
    if not _allowed(datasette, request):
        return _refused(request)
    html = await datasette.render_template(
        template, {"actions": site.config is not None, **context}, request=request)
    return Response.html(html)


async def review_page(datasette, request):
    site = site_of(datasette)
    mails = await asyncio.to_thread(_mails, site) if site else []
    return await _page(datasette, request, "desk_review.html", mails=mails)


async def people_page(datasette, request):
    site = site_of(datasette)
    people = await asyncio.to_thread(_people, site) if site else []
    return await _page(datasette, request, "desk_people.html", people=people)


async def add_page(datasette, request):
    return await _page(datasette, request, "desk_add.html")


async def act(datasette, request):
    """POST /-/aktion/NAME: run it, show its line on the page the form came from."""
    site = site_of(datasette)
    if site is None:
        return Response.text("Nicht gefunden.", status=404)
    if not _allowed(datasette, request):
        return _refused(request)
    if request.method != "POST":
        return Response.redirect(REVIEW_PATH)
    form = dict(await request.post_vars())
    back = form.pop("zurueck", REVIEW_PATH)
    form.pop("csrftoken", None)
    if site.config is None:
        done, text = False, "Diese Ansicht ist nur zum Lesen geöffnet: nichts geändert."
    else:
        done, text = await asyncio.to_thread(actions.perform, site.config,
                                             request.url_vars["name"], form)
    datasette.add_message(request, text, datasette.INFO if done else datasette.ERROR)
    return Response.redirect(back if local_path(back) else REVIEW_PATH)


@hookimpl
def register_routes(datasette):
    return [(rf"^{REVIEW_PATH}$", review_page), (rf"^{PEOPLE_PATH}$", people_page),
            (rf"^{ADD_PATH}$", add_page), (r"^/-/aktion/(?P<name>[a-z_]+)$", act)]
