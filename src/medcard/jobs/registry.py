"""Imports every module that declares jobs, so a worker process knows them all.

The web process imports these modules anyway (its pages enqueue the jobs); a bare
``medcard worker`` does not, so it imports this list.  Add a module here when it
declares a ``@jobs.job``.
"""

from __future__ import annotations

JOB_MODULES: tuple[str, ...] = (
    "medcard.onboarding.documents",
    "medcard.extracts.jobs",
    "medcard.billing.jobs",
)


def load_all() -> None:
    import importlib

    for name in JOB_MODULES:
        importlib.import_module(name)


load_all()
