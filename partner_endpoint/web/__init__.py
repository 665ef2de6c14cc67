"""HTTP plumbing every part shares: request bodies, client addresses, failure budgets, 503s."""
