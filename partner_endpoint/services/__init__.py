"""One service per capability (keys, leaks, sign-in and sessions, accounts): where decisions are made."""
