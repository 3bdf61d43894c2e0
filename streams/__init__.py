"""The SPMA streaming service, by layer: records, topics and the codec; the market, account and
fund logic free of Kafka; the Faust layer; the tools; the command line (docs/architecture.md)."""
