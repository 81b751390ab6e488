"""A Rasa project on disk: its YAML files (config.yml, domain.yml, endpoints.yml,
credentials.yml, data/), loaded into typed settings and validated with errors that name the file,
line and key; `crowddesk init`'s scaffold; the domain's responses rendered as messages.

The lowest room of `bot/`: imports `errors/`, `nlu/`, `knowledge_base/`, `connectors/` and
nothing of `bot/`.
"""
