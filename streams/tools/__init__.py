"""Tools that drive the service from outside: the demo, the exchange simulator, the load."""
