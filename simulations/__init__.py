"""SimPy harness: replays workloads through the router (see issue: simulator)."""
