"""Family history entered by the patient, confirmed by clinicians (issue 6)."""
