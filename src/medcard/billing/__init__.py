"""Services received under the OMS policy (issue 9): billing lines as FHIR ChargeItems.

Public API::

    from medcard.billing import generate, listing, disputes, figures, prices
    generate.for_patient(engine, pid)              # bill a card's finished entries (idempotent)
    listing.patient_lines(repo, pid, period)       # the patient's list with totals
    disputes.dispute(repo, pid, line_id)           # "I did not receive this service"
    figures.monthly(repo)                          # an insurer's billed/disputed/voided
    prices.set_tariffs(engine, ctx, region, {...}) # a region admin's price list

``checks.install()`` (run on import) guards every ChargeItem written through the store.
"""

from __future__ import annotations

from medcard.billing import checks

checks.install()
