"""Networks shared by several methods (VGG19 features, Gram matrices)."""
