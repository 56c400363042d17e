"""A small plain-PyTorch model package, as a team's own repository holds one."""
