"""The `make demo` workload: a simulated upstream of vulnerability feeds, a fleet of Python
workers built on the SDK, and the driver that submits one DAG run per feed."""
