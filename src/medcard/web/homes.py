"""Where each role's work is: the page a person lands on after signing in (issue 20).

A doctor lands in the workspace, a registrar on the access requests waiting for them,
a reviewer on the review queue, a region administrator on the region settings, a
patient on their card.  A person who holds several roles chooses one on ``/me/role``
once; the choice is stored on the account (``home_role``), becomes the role they act
in, and is where they land from then on.  An explicit, safe ``next=`` still wins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from medcard.access.roles import Role
from medcard.audit.recorder import SUCCESS
from medcard.auth import accounts
from medcard.auth.accounts import Account, AccountError
from medcard.web.deps import SignedIn, current_session, engine_of, require_csrf, safe_next
from medcard.web.render import PageRoute, page, redirect

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Current = Annotated[SignedIn, Depends(current_session)]

HOMES: dict[Role, str] = {
    Role.PATIENT: "/card",
    Role.PRACTITIONER: "/workspace",
    Role.REGISTRAR: "/registrar/access-requests",
    Role.ORG_ADMIN: "/admin/audit",
    Role.REVIEWER: "/review",
    Role.REGION_ADMIN: "/admin/regions",
}
CHOOSER = "/me/role"
ROLE_ORDER = tuple(HOMES)


def home_of(account: Account) -> str:
    return HOMES.get(account.role, "/me")


def landing(account: Account, next_path: str = "") -> str:
    """Where sign-in continues: a safe ``next``, else the chooser (once), else the home."""
    nxt = safe_next(next_path)
    if nxt:
        return nxt
    if account.has_several_roles and not account.home_role:
        return CHOOSER
    return home_of(account)


def _chooser(request: Request, signed: SignedIn, status_code: int = 200) -> Response:
    account = signed.account
    held = [r for r in ROLE_ORDER if r in account.roles]
    return page(
        request,
        "role_choice.html",
        status_code,
        account=account,
        roles=held,
        homes=HOMES,
        chosen=account.home_role,
    )


@router.get(CHOOSER)
def role_form(request: Request, signed: Current) -> Response:
    if not signed.account.has_several_roles:
        return redirect(home_of(signed.account))
    return _chooser(request, signed)


@router.post(CHOOSER, dependencies=[Depends(require_csrf)])
def role_submit(request: Request, signed: Current, role: Annotated[str, Form()] = "") -> Response:
    engine = engine_of(request)
    account = signed.account
    try:
        chosen = accounts.choose_role(engine, account.id, role)
    except AccountError:
        return _chooser(request, signed, 400)
    accounts.audit(engine, chosen, [("role-choice", SUCCESS, f"works as {chosen.role.value}")])
    return redirect(home_of(chosen))
