"""Rasa's extension points: NLU graph components, tracker and lock stores, the event broker, the
NLG, the server's entry point and the one checked module of what must still be patched."""
