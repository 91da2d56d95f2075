"""
Faults injected into real SDK traffic: each SDK's normal exchange is recorded once from the local
fake provider, then replayed offline under one fault at a time, and the tests assert what the
pinned SDK really does with it: how many attempts it makes, how long it asks to sleep between
them (on the virtual clock, so nothing waits), and what it finally returns or raises.

Pinned versions: openai 3.57, anthropic 2.13, google-genai 3.6.1, ollama 0.6.3, litellm 1.110.2.
Where an SDK disagrees with the reference notes, the SDK wins and a comment says so.

``_clients`` drives each SDK; ``_replay`` runs a call under a cassette and states the checks the
tables share; the test modules hold one table per fault family.
"""
