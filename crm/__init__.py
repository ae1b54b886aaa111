"""Candidate CRM: services usable from the web app, the `crm` command and tests."""

__version__ = "0.1.0"
