"""Shared building blocks of netmesh services (settings, task guards)."""
