"""The built-in sectors, one module each; `base` says what every sector is."""
