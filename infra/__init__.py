"""The process's infrastructure, nothing of the domain: settings and the brokers (Apache Kafka
from Maven Central, the embedded Tansu) with the choice between them."""
