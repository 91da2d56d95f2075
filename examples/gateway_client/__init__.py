"""A gateway client that refreshes its token once on a 401."""
