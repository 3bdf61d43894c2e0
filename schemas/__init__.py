"""The Avro schemas of every SPMA topic, as .avsc files in this folder."""

from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
