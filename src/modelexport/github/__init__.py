"""GitHub: the Actions runner (``actions``), the REST API (``rest``), the sticky comment."""
