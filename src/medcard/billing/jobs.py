"""Service lines for new entries, without anyone running ``medcard billing generate``.

Generation cannot run inside the write that makes an entry (a write hook sees only its own
open transaction, see ADR 0006), so a periodic job bills what was written recently.  Each
sweep looks back further than its interval, and generation is idempotent, so a sweep that
was missed (a restart, a slow run) is covered by the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

from huey import crontab

from medcard import jobs
from medcard.billing import generate

log = logging.getLogger("medcard.billing")

LOOK_BACK: Final = dt.timedelta(minutes=15)


def bill_recent(now: dt.datetime | None = None) -> generate.Outcome:
    """Generate the lines of every card with a billable entry written in the look-back."""
    engine = jobs.runtime().engine
    since = (now or dt.datetime.now(dt.UTC)) - LOOK_BACK
    outcome = generate.run(engine, generate.patients_changed_since(engine, since))
    log.info("billing sweep since %s: %s", since.isoformat(timespec="seconds"), outcome)
    return outcome


@jobs.queue.periodic_task(crontab(minute="*"), name="billing_sweep")  # type: ignore[untyped-decorator]
def billing_sweep() -> None:
    if jobs.runtime().settings.billing_sweep:
        bill_recent()
