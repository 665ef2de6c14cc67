"""Soundpiece's GitHub secret scanning partner endpoint, key store and API authentication."""
