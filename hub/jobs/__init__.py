"""Background jobs: the scheduler (one leader at a time), its leases, retention."""
