"""Regions as configuration: features, time zone, SSO, deadlines, organisations (issue 6)."""
