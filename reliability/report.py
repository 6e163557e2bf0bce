"""RELIABILITY.md from the sections' figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# What a new operator and a hostile client find first (issue 14): each item with the
# suite's test that failed before it was mended.  tests/reliability/test_report.py
# checks that every test named here exists.
HARDENING: tuple[tuple[str, str], ...] = (
    (
        "serve and worker refuse a database not at the schema head; --migrate under an advisory lock",
        "tests/ops/test_schema_guard.py",
    ),
    (
        "medcard token --patient mints patient/*.rs and refuses system/ scopes",
        "tests/access/test_patient_tokens.py::test_cli_refuses_a_patient_token_with_system_scopes",
    ),
    (
        "deletes pass the write hooks; a correction report is never deleted",
        "tests/corrections/test_reports.py::test_reports_filed_over_the_api_are_checked_and_cannot_be_forged",
    ),
    (
        "logout, deactivation, password and role change end the account's tokens at once",
        "tests/oauth/test_account_revocation.py",
    ),
    (
        "rate limits in the shared store; a flood of refused API requests folded into counts",
        "tests/auth/test_rate_limits.py",
    ),
    ("SSO single-use state shared by every worker", "tests/sso/test_sso_shared_state.py"),
    (
        "20 identical document requests or error reports at once make one",
        "tests/onboarding/test_document_request_race.py, tests/corrections/test_report_race.py",
    ),
    (
        "the production front (deploy/nginx) cuts off a client sending a byte a second",
        "tests/deploy/test_front.py",
    ),
)


def hardening_section() -> list[str]:
    out = ["", "## Hardening (issue 14)", "", "| item | test |", "|---|---|"]
    out += [f"| {item} | `{test}` |" for item, test in HARDENING]
    return out


def _verdict(r: dict[str, Any]) -> str:
    return "**pass**" if not r.get("problems") else f"**FAIL** ({len(r['problems'])} problems)"


def render(
    results: dict[str, dict[str, Any]],
    checks: dict[str, dict[str, str]],
    *,
    long: bool,
    started: datetime,
    ended: datetime,
    machine: str,
) -> str:
    form = "long form" if long else "short form"
    out = [
        "# medcard reliability and security battery",
        "",
        f"Run: {started:%Y-%m-%d %H:%M} to {ended:%H:%M} UTC ({form}, `python -m reliability run"
        f"{' --long' if long else ''}`; `make reliability`).  Machine: {machine}.",
        "Produced by `reliability/run.py`; the raw figures are in `build/reliability/results.json`.",
        "",
        "| part | result | figures |",
        "|---|---|---|",
    ]
    for name, r in results.items():
        out.append(f"| {name} | {_verdict(r)} | {r.get('summary', '')} |")
    for name, c in checks.items():
        lines = [ln.strip("! ") for ln in c["output"].splitlines() if ln.strip("! ")]
        key = name.split("-")[0]
        line = next((ln for ln in lines if ln.lower().startswith(key)), lines[-1] if lines else "")
        out.append(f"| {name} | **{c['status']}** | {line} |")
    out += ["", "## Crash consistency", ""]
    out.append(
        "Client threads send transaction Bundles (a Patient and 3 Observations, each entry "
        "with `ifNoneExist`) and updates (conditional-update creates, then `If-Match` "
        "updates); the server is SIGKILLed at random moments (on PostgreSQL the database is "
        "also stopped with `pg_ctl -m immediate` about half the time), restarted, and the "
        "clients retry what got no answer.  After one more crash the store is compared with "
        "the clients' log: every acknowledged write present with its id and version, no "
        "partial Bundle, no identifier stored twice, versions 1..N with the current row "
        "equal to the last version, every current resource in the search index."
    )
    out.append("")
    out.append(
        "| store | kills | DB crashes | Bundles acknowledged | sends | retries that found the Bundle stored | updates acknowledged | 412-then-read confirmations | 5xx other than 503 | slowest restart | problems |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("crash-sqlite", "crash-postgresql"):
        r = results.get(name)
        if not r or "kills" not in r:
            continue
        other = sum(int(n) for s, n in r.get("http_5xx", {}).items() if str(s) != "503")
        out.append(
            f"| {name.split('-', 1)[1]} | {r['kills']} | {r['db_kills']} | {r['bundles']} | "
            f"{r['bundle_sends']} | {r['deduplicated']} | {r['updates']} | {r['confirmed_by_read']} | "
            f"{other} | {r['slowest_restart']:.1f} s | {len(r['problems'])} |"
        )
    faults = results.get("db-faults")
    if faults and "phases" in faults:
        out += ["", "## Database faults (PostgreSQL)", ""]
        out.append(
            f"{faults['requests']} requests from 6 client threads while a private PostgreSQL was "
            f"restarted and then stopped (immediate) for a while.  Statuses: "
            f"{faults['by_status']}; the slowest 503 took {faults['slowest_503']:.2f} s."
        )
        out.append("")
        out.append(
            "| fault | first success after the database is back (no failure after it) | /readyz ready again |"
        )
        out.append("|---|---|---|")
        for p in faults["phases"]:
            out.append(
                f"| {p['name']} | {p['recovery_seconds']:.2f} s | {p['readyz_back_seconds']:.2f} s |"
            )
    out += ["", "## Fuzzing", ""]
    out.append(
        "`fuzz-fhir`: hypothesis strategies for whole FHIR requests (resources and Bundles "
        "with wrong types, odd Unicode, NULs, deep nesting; search strings from the declared "
        "parameters with every modifier and prefix; FHIR headers; valid and forged tokens), "
        "in-process.  `fuzz-openapi`: schemathesis, valid and invalid inputs, on the "
        "application's OpenAPI description plus the OAuth endpoints.  Without a suffix on "
        "SQLite, `-postgresql` on a private PostgreSQL."
    )
    out.append("")
    for name in [n for n in results if n.startswith("fuzz-")]:
        r = results.get(name)
        if r and "requests" in r:
            statuses = ", ".join(
                f"{s}: {n}" for s, n in sorted(r["by_status"].items(), key=lambda kv: int(kv[0]))
            )
            out.append(
                f"- {name}: {r['requests']} requests, {r['five_xx']} answered 5xx ({statuses})."
            )
    load = results.get("load")
    if load and load.get("total"):
        t = load["total"]
        early, late = load["memory_early_late_mib"]
        out += ["", "## Load", ""]
        out.append(
            f"{load['users']} users ({load['backend']}; patients : clinicians : integrators = "
            f"6 : 3 : 1, 1-5 s think time) for {load['seconds']} s: {t['requests']} requests, "
            f"{t['rps']:.1f} requests/s, {t['failures']} errors."
        )
        out.append("")
        out.append("| endpoint group | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
        out.append("|---|---|---|---|---|---|---|")
        for g in [*load["groups"], t]:
            out.append(
                f"| {g['name']} | {g['requests']} | {g['rps']:.2f} | {g['p50']:.0f} | "
                f"{g['p95']:.0f} | {g['p99']:.0f} | {g['failures']} |"
            )
        mem = load["memory_mib"]
        step = max(1, len(mem) // 15)
        series = ", ".join(f"{t_}s {m} MiB" for t_, m in mem[::step])
        out += [
            "",
            f"Server memory (RSS of the process tree): median {early} MiB in the second quarter "
            f"of the run, {late} MiB in the last quarter.  Samples: {series}.",
        ]
    out += hardening_section()
    problems = [(n, p) for n, r in results.items() for p in r.get("problems", [])]
    if problems:
        out += ["", "## Problems", ""]
        out += [f"- {n}: {p}" for n, p in problems[:40]]
    out += ["", "## Checks", ""]
    for name, c in checks.items():
        out += [f"### {name}: {c['status']}", "", "```", c["output"][-1200:], "```", ""]
    return "\n".join(out).rstrip() + "\n"
