"""The core: errors, validation, file I/O, the plugin manager, the registry and the builder."""
