"""Scoring, calibration, reports and explanations."""
