"""netmesh agent: the per-node daemon (iperf3 server, scheduled tests, reports)."""
