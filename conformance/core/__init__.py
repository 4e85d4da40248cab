"""Configuration model, HTTP recording, redaction, outcomes, target health and catalogue loading."""
