"""backdrop: the shared runtime library (deployed as a Lambda layer)."""
