"""The SPMA margin model: pure numpy/scipy, no Kafka, no I/O beyond loading parameters."""
