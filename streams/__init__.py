"""The SPMA streaming service: Faust app, agents, tables and the Avro codec."""
