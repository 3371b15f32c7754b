"""Clinic answers: answers written by the clinic's staff for questions the articles don't cover,
live only after a second staff account approves them (bot/staff/clinic_pages.py), stored beside
the knowledge base (bot/clinic/store.py) and matched by their example questions when NLU finds
no article topic (bot/clinic/matcher.py)."""
