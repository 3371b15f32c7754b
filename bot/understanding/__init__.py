"""Understanding a message: the project's spaCy pipeline, the questions inside a message, the lay
lexicon and the NLU training examples read outside Rasa."""
