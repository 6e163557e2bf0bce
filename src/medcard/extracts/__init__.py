"""Extracts from the medical card: a PDF and a FHIR document Bundle built in the
background, listed for the patient, and checkable by anyone through a short code.

``services`` (request, list, download), ``jobs`` (the background build),
``verification`` (codes, the signed record, the public check), ``render`` (the PDF),
``bundle`` (the FHIR document), ``model`` (how an extract is kept as a DocumentReference).
No web framework here: ``medcard.web.extracts`` is the thin page layer.
"""
