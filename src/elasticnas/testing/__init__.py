"""Contract test suites shipped for users' own searchers, super-networks and predictors."""
