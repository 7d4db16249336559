"""netmesh lab: the whole mesh on one machine in network namespaces."""
