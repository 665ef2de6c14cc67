"""Leak reports from the platforms that find credentials in public: receive, verify, parse."""
