"""HTTP handlers, one module per resource; each translates a request into service calls."""
