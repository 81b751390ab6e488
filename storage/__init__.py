"""What every store of CrowdDesk shares: engine creation for SQLite and PostgreSQL, column types,
concurrency-safe inserts and table creation. Each package declares its own tables on top of it.

The lowest layer, beside `errors/`: imports nothing of CrowdDesk but `crowddesk.errors`.
"""
