"""Example clients tested with llmcassette faults; see README.md."""
