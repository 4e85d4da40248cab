"""What checks are made of: the requirement catalogue, expect, evidence rendering, cases."""
