"""The matching-engine simulator: executes liquidation and ADL orders and publishes the fills."""
