"""Region configuration pages (``/admin/regions``) and the page shown for a feature
that a patient's region has turned off.

Region admins (role ``region_admin``) change their own region: name, time zone,
features, organisations, SSO provider and the document-request deadline.  Each save
is audited and logged with the configuration before and after; the page lists the
log.  Installing this module also registers the region check on the FHIR write path.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.exceptions import HTTPException

from medcard.access.roles import Role
from medcard.auth.accounts import Account
from medcard.clock import micros_to_datetime
from medcard.regions import hooks as region_hooks
from medcard.regions.config import (
    RegionConfig,
    RegionError,
    changes,
    get_region,
    list_regions,
    make_config,
    save_region,
)
from medcard.regions.features import Feature
from medcard.regions.gate import FeatureDisabledError, PatientRegion
from medcard.regions.lookup import forget_organizations
from medcard.ru_dates import Times
from medcard.web.deps import current_account, engine_of, require_csrf, settings_of
from medcard.web.render import PageRoute, lang_of, page, redirect

region_hooks.install()

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CurrentAccount = Annotated[Account, Depends(current_account)]
FormText = Annotated[str, Form()]

FEATURE_KEYS = {f: "feature_" + f.value.replace("-", "_") for f in Feature}


def may_administer(account: Account, code: str) -> bool:
    """A region admin changes their own region only."""
    return account.role == Role.REGION_ADMIN and bool(account.region) and account.region == code


def feature_off_page(
    request: Request, region: PatientRegion | FeatureDisabledError, feature: Feature
) -> Response:
    """403 page: the feature is off in this patient's region (the reason, not a blank)."""
    config = region.region if isinstance(region, FeatureDisabledError) else region.config
    return page(
        request,
        "regions/feature_off.html",
        403,
        feature_key=FEATURE_KEYS[feature],
        region=config,
    )


@router.get("/regions")
def regions_compared(request: Request) -> Response:
    """Public: «Что доступно в вашем регионе», every configured region side by side."""
    configured = settings_of(request).sso_providers
    regions = list_regions(engine_of(request))
    sso_ready = {
        r.code: r.enabled(Feature.SSO) and (r.settings.sso_provider or r.code) in configured
        for r in regions
    }
    return page(
        request,
        "regions/compare.html",
        regions=regions,
        features=list(Feature),
        feature_keys=FEATURE_KEYS,
        sso_ready=sso_ready,
        registration=Feature.REGISTRATION,
        wide=True,
    )


@router.get("/admin/regions")
def region_list(request: Request, account: CurrentAccount) -> Response:
    if account.role != Role.REGION_ADMIN:
        raise HTTPException(403)
    mine = [r for r in list_regions(engine_of(request)) if may_administer(account, r.code)]
    return page(request, "regions/list.html", regions=mine)


def _form_page(
    request: Request,
    config: RegionConfig,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    return page(
        request,
        "regions/edit.html",
        status,
        region=config,
        features=list(Feature),
        feature_keys=FEATURE_KEYS,
        sso_keys=sorted(settings_of(request).sso_providers),
        history=[
            (
                Times(ZoneInfo(config.time_zone), lang_of(request)).when(
                    micros_to_datetime(c.changed)
                ),
                c.actor,
                ", ".join(c.after.get("settings", {}).get("features", [])),
            )
            for c in changes(engine_of(request), config.code)
        ],
        error=error,
        notice=notice,
    )


@router.get("/admin/regions/{code}")
def region_form(request: Request, code: str, account: CurrentAccount, notice: str = "") -> Response:
    config = get_region(engine_of(request), code)
    if config is None:
        raise HTTPException(404)
    if not may_administer(account, code):
        raise HTTPException(403)
    return _form_page(request, config, notice="region_saved" if notice == "saved" else "")


@router.post("/admin/regions/{code}", dependencies=[Depends(require_csrf)])
async def region_save(request: Request, code: str, account: CurrentAccount) -> Response:
    engine = engine_of(request)
    current = get_region(engine, code)
    if current is None:
        raise HTTPException(404)
    if not may_administer(account, code):
        raise HTTPException(403)
    form = await request.form()
    features = [str(v) for v in form.getlist("feature") if str(v) in {f.value for f in Feature}]
    orgs = [line for line in str(form.get("organizations", "")).split() if line.strip()]
    days = str(form.get("document_request_days", "")).strip()
    try:
        config = make_config(
            code,
            str(form.get("name", "")),
            str(form.get("time_zone", "")).strip(),
            {
                "features": features,
                "organizations": orgs,
                "sso_provider": str(form.get("sso_provider", "")).strip(),
                "document_request_days": int(days) if days.isdigit() else -1,
            },
        )
    except RegionError as exc:
        return _form_page(request, current, error=exc.key, status=400)
    save_region(engine, config, account.actor)
    forget_organizations()
    return redirect(f"/admin/regions/{code}?notice=saved")
