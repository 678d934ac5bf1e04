"""Authentication and access control of the read side: principals, tokens, policy."""
