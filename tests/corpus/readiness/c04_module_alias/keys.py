EXPIRY = "security.password.expiry_days"
MIN_LENGTH = "security.password.min_length"
