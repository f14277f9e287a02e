"""Prompt templates as versioned YAML files; see prompts/loader.py."""
