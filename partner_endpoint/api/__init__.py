"""The Soundpiece API's Bearer authentication, served from an in-process cache: the hot path."""
