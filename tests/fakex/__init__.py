"""The local fake exchange that the real ccxt client is pointed at in tests."""
