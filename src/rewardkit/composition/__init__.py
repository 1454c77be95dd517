"""Composition: the compose spec model, the combined reward, the expression language, scoring rows."""
