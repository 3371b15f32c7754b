"""The project's input channels for Rasa (configured in credentials.yml).

Every patient-facing channel screens incoming text the same way (`guard.screen`)
before Rasa sees it: crisis first, then length and kind.
"""
