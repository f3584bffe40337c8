"""Placeholder: being written."""
TEMPLATE = ""
