"""Pure rules the service applies: owner addresses, IP networks, labels, one-line display, paging."""
