"""How accurate and how costly is each strategy on each benchmark."""
