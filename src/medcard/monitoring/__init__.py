"""The well-being diary: patient-reported vital signs, targets, flags, charts, imports."""
