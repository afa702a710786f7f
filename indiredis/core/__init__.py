"""The machinery every bridge shares: the bridge itself and the bounded channels between its sides."""
