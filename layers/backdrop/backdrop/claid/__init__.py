"""Claid's AI Background and Image Editing APIs, one module per part, imported by name so that a function loads
only the parts it uses (the publisher reads the contract's models, never the HTTP client):

- models: the contract, as published (requests, responses, errors);
- request: the one place a request is built from a photo's settings;
- client: the HTTP client, its deadline and results, and `shared_client`;
- limiter: the account's rate limits, shared by every instance;
- errors: what a call can end in."""
