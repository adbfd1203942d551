"""Every write in the governance layer goes through a function in this package."""
