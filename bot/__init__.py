"""Front ends: the chat adapters and the local web playground, all speaking to StyleService."""
