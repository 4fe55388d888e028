"""Typer commands: parse arguments, call the library, render. No logic of their own."""
