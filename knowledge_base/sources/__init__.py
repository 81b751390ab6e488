"""Community and FAQ sources read into `KBEntry` records with their provenance: the importer
registry and its simple formats (YAML, CSV, Markdown, Rasa retrieval intents), Stack Exchange
dumps, Discourse topics, and the HTML-to-text they share.

Imports `knowledge_base.types` and `knowledge_base.entry_fields` at most; storing what was read is
`knowledge_base/ingest.py`'s job.
"""
