"""Running a bot: assembling it from a project and a model (`assemble`), the database with every
table (`database`), the HTTP app and its routes' mounting, the message gateway and REST replay,
the channels' background work, the rasa_sdk action server process, the terminal shell, API
credentials and log scrubbing.

May import every room of `bot/` except `evaluation/` and `cli/`.
"""
