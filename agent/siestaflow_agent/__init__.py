"""siestaflow-agent: runs siestaflow calculations on a cluster and reports to the server."""

__version__ = "0.1.0"
