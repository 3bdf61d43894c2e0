"""The demo: a seeded exchange played through the broker, the codec and the engine."""
