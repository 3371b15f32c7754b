"""The ketamine-clinic patient assistant's own library.

Knowledge-base access, search, the spaCy pipeline, answer composition and the
command-line tools live here; ``actions/`` holds only thin Rasa SDK wrappers.
"""
