"""Performance benchmarks for Candidate CRM: `make bench` (`python -m benchmarks`).

Times the demo data load, then how long each page of the app takes to show after a
sidebar click, against a hello-world Streamlit page measured the same way in the same run.
"""
