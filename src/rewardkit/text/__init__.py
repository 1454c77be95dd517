"""Text parts rewards share: views (which part of a text to score), tokenizers, number parsing, time-boxed regex."""
