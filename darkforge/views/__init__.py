"""Views of a network: summary (table, JSON, Darknet rows), structure, draw, the layer reference."""
