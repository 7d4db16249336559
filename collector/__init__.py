"""netmesh collector: merges agents' reports into one Prometheus endpoint."""
