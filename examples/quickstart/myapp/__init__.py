"""The quickstart's application."""
