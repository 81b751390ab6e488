"""Local stand-ins for the messaging platforms' HTTP APIs, served on 127.0.0.1 for tests."""
