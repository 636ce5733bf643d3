"""The meshplane operator: kopf watches, one solve loop, a writer, a Lease."""
