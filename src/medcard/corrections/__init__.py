"""Errors in the card (issue 7): a patient reports, an authority reviews, entries leave.

Public API::

    from medcard.corrections import service
    service.authorities_for(repo, pid)           # {AuthorityType: Authority} routed for the card
    service.file_report(repo, NewReport(...))     # -> Task id (checked; refused with ReportError)
    service.patient_reports(repo, pid)            # the patient's reports, newest first
    service.queue(repo) / figures(reports)        # a reviewer's queue, monthly figures
    service.start_review / ask / answer / decide  # the review; decide applies the effect
    service.escalate(repo, task_id, authority)    # rejected or overdue -> another authority
    service.author_notices(repo)                  # corrections and questions for a clinician
    service.describe(repo, report)                # what the disputed entries were

A report is a FHIR Task (``model``); ``checks.install()`` (run on import) guards every
correction Task written through the store, whichever path writes it.
"""

from __future__ import annotations

from medcard.corrections import checks

checks.install()
