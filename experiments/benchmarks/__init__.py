"""How fast is the toolkit against a hand-written PyTorch loop, and how does it scale."""
