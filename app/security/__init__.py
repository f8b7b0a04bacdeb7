"""Security controls kept in one place: encryption, headers, CSRF/JSON errors, access guards."""
