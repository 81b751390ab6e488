"""Custom actions of the Northwind Bank demo bot, served by the rasa_sdk action server."""
